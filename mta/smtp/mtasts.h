/* SPDX-License-Identifier: ISC */
/*
 * mtasts.h - layer 1 (pure): MTA-STS (RFC 8461). The _mta-sts TXT record
 * (3.1), the policy file served at https://mta-sts.DOMAIN/.well-known/
 * mta-sts.txt (3.2) and the matching of MX hosts against its mx patterns
 * (4.1).
 */
#ifndef TERN_MTASTS_H
#define TERN_MTASTS_H

#include <stdbool.h>
#include <stddef.h>

#define MTASTS_ID_MAX 32
#define MTASTS_MX_MAX 16           /* patterns kept; more are ignored */
#define MTASTS_NAME_MAX 253
#define MTASTS_MAX_AGE 31557600UL  /* one year: the RFC's upper bound */
#define MTASTS_POLICY_MAX 65536    /* a longer policy file is refused */

enum mtasts_mode { MTASTS_NONE, MTASTS_TESTING, MTASTS_ENFORCE };

struct mtasts_policy {
	enum mtasts_mode mode;
	unsigned long max_age;         /* seconds */
	size_t nmx;
	char mx[MTASTS_MX_MAX][MTASTS_NAME_MAX + 1]; /* lower case; "*.x" */
};

/*
 * One TXT record: "v=STSv1; id=ID; ..." (v first, id 1-32 letters and
 * digits, other fields ignored). 0 with id, or -1 if it is not such a
 * record.
 */
int mtasts_txt_parse(const char *txt, char id[MTASTS_ID_MAX + 1]);
/*
 * All TXT records of _mta-sts.DOMAIN: those not starting "v=STSv1" are
 * discarded; exactly one must remain and be valid (3.1). 0 with id, or
 * -1: the domain has no usable record.
 */
int mtasts_txt_choose(char *const *txts, size_t n,
    char id[MTASTS_ID_MAX + 1]);

/*
 * The policy file (CRLF or LF lines "key: value"): version STSv1, mode,
 * max_age and the mx patterns (required unless mode is none); unknown
 * keys ignored. 0, or -1 with why.
 */
int mtasts_policy_parse(const char *text, size_t len, struct mtasts_policy *p,
    char *why, size_t whysz);

/* Whether host (no final dot, any case) matches one of the patterns:
 * exactly, or "*.example.net" for one label under example.net. */
bool mtasts_mx_match(const struct mtasts_policy *p, const char *host);

const char *mtasts_mode_name(enum mtasts_mode m);

/*
 * A cached policy as one line for a store that survives restarts:
 * "1 ID MODE MAX_AGE EXPIRES MX...". 0, or -1 if out is too small.
 * mtasts_cache_parse reads it back: 0, or -1 if it is not such a line.
 */
int mtasts_cache_format(const struct mtasts_policy *p, const char *id,
    long long expires, char *out, size_t outsz);
int mtasts_cache_parse(const char *line, struct mtasts_policy *p,
    char id[MTASTS_ID_MAX + 1], long long *expires);

#endif
