/* qos.c - the QoS score (qos.h). */
#include "qos.h"

#include <assert.h>
#include <math.h>

void kci_qos_params_default(kci_qos_params *params)
{
    params->half_life_ms = 60 * 1000;
    params->target_ms = 50;
    params->slow_ms = 250;
    params->prior_requests = 2;
}

static void decay(kci_qos *qos, const kci_qos_params *params, int64_t now_ms)
{
    if (qos->updated_ms == 0 || now_ms <= qos->updated_ms || params->half_life_ms <= 0) {
        if (qos->updated_ms == 0 || now_ms > qos->updated_ms) qos->updated_ms = now_ms;
        return;
    }
    double factor = exp2(-(double)(now_ms - qos->updated_ms) / (double)params->half_life_ms);
    qos->requests *= factor;
    qos->bad *= factor;
    qos->failed *= factor;
    qos->latency_ms_sum *= factor;
    qos->updated_ms = now_ms;
}

void kci_qos_add(kci_qos *qos, const kci_qos_params *params, const kci_qos_sample *sample,
                 int64_t now_ms)
{
    assert(sample->latency_ms >= 0);
    decay(qos, params, now_ms);
    bool bad = sample->failed || sample->deadline_missed || sample->latency_ms > params->slow_ms;
    qos->requests += 1;
    qos->bad += bad ? 1 : 0;
    qos->failed += sample->failed ? 1 : 0;
    assert(qos->failed <= qos->bad + 1e-9);
    qos->latency_ms_sum += sample->latency_ms;
    qos->samples++;
}

double kci_qos_latency_ms(const kci_qos *qos)
{
    return qos->requests > 0 ? qos->latency_ms_sum / qos->requests : 0;
}

bool kci_qos_mostly_failing(const kci_qos *qos)
{
    return qos->bad > 0 && qos->failed * 2 >= qos->bad;
}

bool kci_qos_error_is_client_caused(int error_code)
{
    return error_code >= 400 && error_code <= 499;
}

bool kci_qos_error_is_service_fault(int error_code)
{
    return error_code > 0 && !kci_qos_error_is_client_caused(error_code);
}

double kci_qos_score(kci_qos *qos, const kci_qos_params *params, int64_t now_ms)
{
    decay(qos, params, now_ms);
    double success = 1 - qos->bad / (qos->requests + params->prior_requests);
    double over = kci_qos_latency_ms(qos) / params->target_ms - 1;
    double latency = 1 / (1 + (over > 0 ? over : 0));
    double score = success * latency;
    assert(score >= 0 && score <= 1);
    return score;
}
