/* credibility.c - reporter credibility and rate limit (credibility.h). */
#include "credibility.h"

#include <assert.h>

void kci_credibility_params_default(kci_credibility_params *params)
{
    params->perjury_below = 0.3;
    params->perjury_reports_min = 5;
    params->rate_per_s = 50;
    params->burst = 200;
}

double kci_credibility_value(const kci_credibility *credibility)
{
    double alpha = 1.0 + credibility->confirmed, beta = 1.0 + credibility->refuted;
    return alpha / (alpha + beta);
}

void kci_credibility_judge(kci_credibility *credibility, bool confirmed)
{
    if (confirmed)
        credibility->confirmed++;
    else
        credibility->refuted++;
}

bool kci_credibility_perjurer(const kci_credibility *credibility,
                              const kci_credibility_params *params)
{
    uint32_t judged = credibility->confirmed + credibility->refuted;
    return judged >= params->perjury_reports_min &&
           kci_credibility_value(credibility) < params->perjury_below;
}

bool kci_credibility_admit(kci_credibility *credibility, const kci_credibility_params *params,
                           int64_t now_ms)
{
    if (credibility->tokens_ms == 0) {
        credibility->tokens = params->burst;
        credibility->tokens_ms = now_ms;
    }
    if (now_ms > credibility->tokens_ms) {
        credibility->tokens +=
            params->rate_per_s * (double)(now_ms - credibility->tokens_ms) / 1000.0;
        if (credibility->tokens > params->burst) credibility->tokens = params->burst;
        credibility->tokens_ms = now_ms;
    }
    assert(credibility->tokens <= params->burst);
    if (credibility->tokens < 1) {
        credibility->dropped++;
        return false;
    }
    credibility->tokens -= 1;
    return true;
}
