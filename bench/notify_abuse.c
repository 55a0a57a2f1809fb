/* notify_abuse.c - what one client's bad Kc-Notify headers cost the others
 * (docs/security.md). A legitimate client submits durable requests one at
 * a time (each waits for its acknowledgement, 1 s at most) for a fixed
 * time, while an attacker on its own connection submits, every
 * interval, a request whose Kc-Notify has spaces ("a b c"): before the
 * subject checks the persister wrote that into an HPUB line and was thrown
 * off the server. Prints the legitimate client's acknowledged and lost
 * submits as one JSON line.
 *
 *   notify_abuse URL [SECONDS] [ATTACK_INTERVAL_MS]
 *
 * A service must answer kc.req.bench (the program serves it itself). */
#include <nats/nats.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

enum { ACK_TIMEOUT_MS = 1000 };

static atomic_bool stopping;

static int64_t now_ms(void)
{
    struct timespec now;
    clock_gettime(CLOCK_MONOTONIC, &now);
    return (int64_t)now.tv_sec * 1000 + now.tv_nsec / 1000000;
}

static void on_request(natsConnection *connection, natsSubscription *subscription, natsMsg *message,
                       void *closure)
{
    (void)subscription, (void)closure;
    if (natsMsg_GetReply(message) != NULL)
        natsConnection_PublishString(connection, natsMsg_GetReply(message), "done");
    natsMsg_Destroy(message);
}

typedef struct attack {
    natsConnection *connection;
    int interval_ms;
    long sent;
} attack;

static void *attacker(void *closure)
{
    attack *work = closure;
    while (!atomic_load(&stopping)) {
        natsMsg *message = NULL;
        if (natsMsg_Create(&message, "kc.submit.bench", NULL, "x", 1) == NATS_OK) {
            natsMsgHeader_Set(message, "Kc-Notify", "a b c");
            natsConnection_PublishMsg(work->connection, message);
            natsMsg_Destroy(message);
            work->sent++;
        }
        struct timespec pause = {.tv_sec = work->interval_ms / 1000,
                                 .tv_nsec = (long)(work->interval_ms % 1000) * 1000000L};
        nanosleep(&pause, NULL);
    }
    return NULL;
}

int main(int argc, char **argv)
{
    if (argc < 2) {
        fprintf(stderr, "usage: %s URL [SECONDS] [ATTACK_INTERVAL_MS]\n", argv[0]);
        return 2;
    }
    int seconds = argc > 2 ? atoi(argv[2]) : 5;
    int interval_ms = argc > 3 ? atoi(argv[3]) : 100;
    natsConnection *service = NULL, *client = NULL, *bad = NULL;
    natsSubscription *subscription = NULL;
    if (natsConnection_ConnectTo(&service, argv[1]) != NATS_OK ||
        natsConnection_ConnectTo(&client, argv[1]) != NATS_OK ||
        natsConnection_ConnectTo(&bad, argv[1]) != NATS_OK) {
        fprintf(stderr, "notify_abuse: cannot connect to %s\n", argv[1]);
        return 1;
    }
    natsConnection_QueueSubscribe(&subscription, service, "kc.req.bench", "bench", on_request,
                                  NULL);
    natsConnection_Flush(service);
    attack work = {.connection = bad, .interval_ms = interval_ms};
    pthread_t thread;
    if (interval_ms > 0) pthread_create(&thread, NULL, attacker, &work);
    long acknowledged = 0, lost = 0;
    int64_t end_ms = now_ms() + (int64_t)seconds * 1000;
    while (now_ms() < end_ms) {
        natsMsg *reply = NULL;
        natsStatus status =
            natsConnection_RequestString(&reply, client, "kc.submit.bench", "job", ACK_TIMEOUT_MS);
        const char *error = NULL;
        if (status == NATS_OK && natsMsgHeader_Get(reply, "Kc-Error", &error) != NATS_OK)
            acknowledged++;
        else
            lost++;
        natsMsg_Destroy(reply);
    }
    atomic_store(&stopping, true);
    if (interval_ms > 0) pthread_join(thread, NULL);
    printf("{\"seconds\":%d,\"attack_interval_ms\":%d,\"attacks\":%ld,\"acknowledged\":%ld,"
           "\"lost\":%ld,\"lost_fraction\":%.4f}\n",
           seconds, interval_ms, work.sent, acknowledged, lost,
           acknowledged + lost > 0 ? (double)lost / (double)(acknowledged + lost) : 0.0);
    natsSubscription_Destroy(subscription);
    natsConnection_Destroy(bad);
    natsConnection_Destroy(client);
    natsConnection_Destroy(service);
    nats_Close();
    return 0;
}
