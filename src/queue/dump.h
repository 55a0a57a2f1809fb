/* dump.h - the readable form of a record, one line each, like the original
 * REQUEST_REPLY.queue file ("REQUEST#<client>#<timestamp>#<payload>"), with
 * the id and the request type added:
 *
 *   REQUEST#<id>#<ts>#<type>#<client>#<payload>
 *   REPLY#<id>#<ts>#<replying node>#<Kc-Error or empty>#<payload>
 *   REDELIVERY#<id>#<ts>#<attempt>
 *   TOMBSTONE#<id>#<ts>#<attempts>
 *   ACK#<id>#<ts>
 *   OBSERVED_REQUEST#... and OBSERVED_REPLY#... as REQUEST and REPLY
 *
 * <ts> is the HLC text "<wall ms>.<counter>". Bytes of the payload (and of
 * the other fields) below 0x20, 0x7f and '\' are escaped as \n, \r, \t, \\
 * or \xNN, so a record is always exactly one line; other bytes, UTF-8
 * included, are written as they are. */
#ifndef KCI_DUMP_H
#define KCI_DUMP_H

#include <stdio.h>

#include "record.h"

/* Writes the line (with its LF) to out; returns 0 or -1 on a write error. */
int kci_dump_line(FILE *out, const kci_record *record);

#endif
