/*
 * Checks cimlink.c against ../vectors/frames.tsv: every valid frame decodes to the listed header
 * and payload and re-encodes to the same wire bytes; every malformed one fails with the listed
 * error. Prints "N passed, M failed" and exits non-zero on any failure.
 * Build: cc -std=c99 -Wall -Wextra -Werror -O2 -o test_vectors test_vectors.c cimlink.c
 * Run:   ./test_vectors ../vectors/frames.tsv
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cimlink.h"

static size_t unhex(const char *s, uint8_t *out, size_t cap) {
  size_t n = 0;
  if (strcmp(s, ".") == 0 || strcmp(s, "-") == 0) return 0;
  while (s[0] && s[1] && n < cap) {
    unsigned v;
    if (sscanf(s, "%2x", &v) != 1) break;
    out[n++] = (uint8_t)v;
    s += 2;
  }
  return n;
}

static const char *status_name(int s) {
  switch (s) {
    case CIMLINK_OK: return "ok";
    case CIMLINK_E_COBS: return "cobs";
    case CIMLINK_E_SHORT: return "short";
    case CIMLINK_E_LENGTH: return "length";
    case CIMLINK_E_CRC: return "crc";
    case CIMLINK_E_OVERSIZE: return "oversize";
    case CIMLINK_E_FLAGS: return "flags";
    case CIMLINK_E_VERSION: return "version";
    default: return "?";
  }
}

static uint8_t wire[2 * CIMLINK_MAX_WIRE], payload[2 * CIMLINK_MAX_WIRE], again[CIMLINK_MAX_WIRE];
static char line[4 * CIMLINK_MAX_WIRE + 512];
static cimlink_rx rx;

int main(int argc, char **argv) {
  const char *path = argc > 1 ? argv[1] : "../vectors/frames.tsv";
  FILE *fp = fopen(path, "r");
  if (!fp) {
    fprintf(stderr, "cannot open %s\n", path);
    return 2;
  }
  /* CRC-32/ISO-HDLC check value. */
  int passed = 0, failed = 0;
  if (cimlink_crc32((const uint8_t *)"123456789", 9, 0) != 0xCBF43926u) {
    printf("FAIL crc32 check value\n");
    failed++;
  } else {
    passed++;
  }
  while (fgets(line, sizeof line, fp)) {
    if (line[0] == '#' || line[0] == '\n') continue;
    line[strcspn(line, "\r\n")] = 0;
    char *fields[9];
    int nf = 0;
    for (char *tok = strtok(line, "\t"); tok && nf < 9; tok = strtok(NULL, "\t")) fields[nf++] = tok;
    if (nf != 9) {
      printf("FAIL malformed line (%d fields)\n", nf);
      failed++;
      continue;
    }
    const char *name = fields[0], *expect = fields[1];
    size_t wlen = unhex(fields[2], wire, sizeof wire);
    cimlink_rx_init(&rx, CIMLINK_MAX_PAYLOAD);
    cimlink_frame f;
    int status = -1, results = 0;
    for (size_t i = 0; i < wlen; i++) {
      int r = cimlink_rx_byte(&rx, wire[i], &f);
      if (r >= 0) {
        status = r;
        results++;
      }
    }
    int ok = results == 1 && strcmp(status_name(status), expect) == 0;
    if (ok && status == CIMLINK_OK) {
      size_t plen = unhex(fields[8], payload, sizeof payload);
      ok = f.version == (uint8_t)atoi(fields[3]) && f.flags == (uint8_t)atoi(fields[4]) && f.type == (uint8_t)atoi(fields[5]) &&
           f.seq == (uint8_t)atoi(fields[6]) && f.request_id == (uint16_t)atoi(fields[7]) && f.payload_len == plen &&
           (plen == 0 || memcmp(f.payload, payload, plen) == 0);
      if (ok) {
        cimlink_frame g = f;
        g.payload = payload;
        size_t n = cimlink_encode(&g, again);
        ok = n == wlen && memcmp(again, wire, n) == 0;
      }
    }
    if (ok) {
      passed++;
    } else {
      failed++;
      printf("FAIL %s: expected %s, got %s (%d results)\n", name, expect, status >= 0 ? status_name(status) : "nothing", results);
    }
  }
  fclose(fp);
  printf("%d passed, %d failed\n", passed, failed);
  return failed == 0 ? 0 : 1;
}
