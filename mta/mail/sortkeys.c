/* SPDX-License-Identifier: ISC */
/*
 * sortkeys.c - layer 1 (pure): SORT and THREAD keys of a header section
 * (sortkeys.h). Encoded words (RFC 2047) are compared as written: the
 * order among non-ASCII subjects and names is by their encoded form.
 */
#include "mail/sortkeys.h"

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/buf.h"
#include "base/util.h"
#include "mail/message.h"

#define REFS_MAX 100

static char *
lower_dup(const char *s, size_t len)
{
	char *o = xstrndup(s, len);

	for (char *p = o; *p; p++)
		*p = (char)tolower((unsigned char)*p);
	return o;
}

/* days since 1970-01-01 of a civil date (proleptic Gregorian) */
static int64_t
days_from_civil(int64_t y, int m, int d)
{
	y -= m <= 2;
	int64_t era = (y >= 0 ? y : y - 399) / 400;
	int64_t yoe = y - era * 400;
	int64_t doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
	int64_t doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
	return era * 146097 + doe - 719468;
}

static const char *const months[12] = { "jan", "feb", "mar", "apr", "may",
	"jun", "jul", "aug", "sep", "oct", "nov", "dec" };

int64_t
sort_parse_date(const char *s, size_t len)
{
	char tok[8][32];
	size_t nt = 0, i = 0;

	/* tokens split on space, comma; ':' stays inside the time */
	while (i < len && nt < 8) {
		while (i < len && (s[i] == ' ' || s[i] == '\t' || s[i] == ',' ||
		    s[i] == '\r' || s[i] == '\n'))
			i++;
		if (i >= len || s[i] == '(')
			break;
		size_t st = i;
		while (i < len && s[i] != ' ' && s[i] != '\t' && s[i] != ',' &&
		    s[i] != '\r' && s[i] != '\n')
			i++;
		if (i - st >= sizeof(tok[0]))
			return -1;
		memcpy(tok[nt], s + st, i - st);
		tok[nt][i - st] = '\0';
		nt++;
	}
	size_t t = 0;
	if (t < nt && isalpha((unsigned char)tok[t][0]))
		t++;      /* the day of the week */
	if (t + 4 > nt)
		return -1;    /* day month year time */
	char *end;
	long d = strtol(tok[t], &end, 10);
	if (*end || d < 1 || d > 31)
		return -1;
	int mon = -1;
	for (int k = 0; k < 12; k++)
		if (ascii_strncaseeq(tok[t + 1], months[k], 3) &&
		    strlen(tok[t + 1]) == 3)
			mon = k + 1;
	long y = strtol(tok[t + 2], &end, 10);
	if (mon < 0 || *end || y < 0)
		return -1;
	if (strlen(tok[t + 2]) <= 2)
		y += y < 50 ? 2000 : 1900;
	else if (strlen(tok[t + 2]) == 3)
		y += 1900;
	int hh = 0, mm = 0, ss = 0;
	const char *tm = tok[t + 3];
	if (sscanf(tm, "%2d:%2d:%2d", &hh, &mm, &ss) < 2 || hh > 23 ||
	    mm > 59 || ss > 60)
		return -1;
	long off = 0;
	if (t + 4 < nt) {
		const char *z = tok[t + 4];
		if ((z[0] == '+' || z[0] == '-') && strlen(z) == 5 &&
		    isdigit((unsigned char)z[1])) {
			long v = strtol(z + 1, NULL, 10);
			off = (v / 100) * 3600 + (v % 100) * 60;
			if (z[0] == '-')
				off = -off;
		} else {
			static const struct { const char *n; int h; } zones[] = {
				{ "EST", -5 }, { "EDT", -4 }, { "CST", -6 },
				{ "CDT", -5 }, { "MST", -7 }, { "MDT", -6 },
				{ "PST", -8 }, { "PDT", -7 } };
			for (size_t k = 0; k < sizeof(zones) / sizeof(zones[0]); k++)
				if (ascii_strcaseeq(z, zones[k].n))
					off = zones[k].h * 3600L;
		}
	}
	return days_from_civil(y, mon, (int)d) * 86400 + hh * 3600 + mm * 60 +
	    ss - off;
}

static bool
is_wsp(char c)
{
	return c == ' ' || c == '\t' || c == '\r' || c == '\n';
}

/* "[...]" at p (and the blanks after it): its length, else 0 */
static size_t
blob_len(const char *p, size_t n)
{
	size_t i = 1;

	if (n == 0 || p[0] != '[')
		return 0;
	while (i < n && p[i] != ']' && p[i] != '[')
		i++;
	if (i >= n || p[i] != ']')
		return 0;
	i++;
	while (i < n && p[i] == ' ')
		i++;
	return i;
}

/* "re:", "fw:", "fwd:" (blanks and a blob allowed before the ':') */
static size_t
refwd_len(const char *p, size_t n)
{
	size_t i;

	if (n >= 2 && ascii_strncaseeq(p, "re", 2))
		i = 2;
	else if (n >= 3 && ascii_strncaseeq(p, "fwd", 3))
		i = 3;
	else if (n >= 2 && ascii_strncaseeq(p, "fw", 2))
		i = 2;
	else
		return 0;
	while (i < n && p[i] == ' ')
		i++;
	i += blob_len(p + i, n - i);
	if (i >= n || p[i] != ':')
		return 0;
	i++;
	while (i < n && p[i] == ' ')
		i++;
	return i;
}

char *
sort_base_subject(const char *s, size_t len, bool *reply)
{
	struct buf b;

	*reply = false;
	/* whitespace runs (folds too) to one space, no leading blanks */
	buf_init(&b);
	for (size_t i = 0; i < len; i++) {
		if (is_wsp(s[i])) {
			if (b.len && b.data[b.len - 1] != ' ')
				buf_append_char(&b, ' ');
			continue;
		}
		buf_append_char(&b, s[i]);
	}
	char *p = b.data ? b.data : "";
	size_t n = b.len;
	for (;;) {
		bool again = false;
		/* trailing "(fwd)" and blanks */
		while (n > 0 && p[n - 1] == ' ')
			n--;
		if (n >= 5 && ascii_strncaseeq(p + n - 5, "(fwd)", 5)) {
			n -= 5;
			*reply = true;
			again = true;
		}
		/*
		 * Leading "Re:", "Fwd:" and "[list]" blobs; a blob goes only
		 * if something remains after it (RFC 5256 2.1 steps 4-5).
		 */
		for (;;) {
			size_t r = refwd_len(p, n);
			if (r) {
				*reply = true;
			} else if ((r = blob_len(p, n)) == 0 || r >= n) {
				break;
			}
			p += r;
			n -= r;
			again = true;
		}
		/* "[fwd: subject]" */
		if (n >= 6 && ascii_strncaseeq(p, "[fwd:", 5) && p[n - 1] == ']') {
			p += 5;
			n -= 6;
			while (n > 0 && *p == ' ') {
				p++;
				n--;
			}
			*reply = true;
			again = true;
		}
		if (!again)
			break;
	}
	char *out = lower_dup(p, n);
	buf_clear(&b);
	return out;
}

/* every "<...>" in v, in order, appended to k->refs (bounded) */
static void
add_ids(struct sort_keys *k, const char *v, size_t len)
{
	for (size_t i = 0; i < len && k->nrefs < REFS_MAX; i++) {
		if (v[i] != '<')
			continue;
		size_t j = i + 1;
		while (j < len && v[j] != '>' && v[j] != '<' && !is_wsp(v[j]))
			j++;
		if (j >= len || v[j] != '>' || j == i + 1) {
			i = j - 1;
			continue;
		}
		char *id = xstrndup(v + i, j - i + 1);
		bool dup = false;
		for (size_t q = 0; q < k->nrefs; q++)
			dup |= strcmp(k->refs[q], id) == 0;
		if (dup)
			free(id);
		else {
			k->refs = xreallocarray(k->refs, k->nrefs + 1,
			    sizeof(char *));
			k->refs[k->nrefs++] = id;
		}
		i = j;
	}
}

static void
first_address(const struct message_field *f, char **mailbox, char **display)
{
	struct message_addr a;

	if (message_parse_addresses(f->value, f->value_len, &a, 1) < 1)
		return;
	if (mailbox)
		*mailbox = lower_dup(a.local, strlen(a.local));
	if (display) {
		if (a.name[0])
			*display = lower_dup(a.name, strlen(a.name));
		else {
			char *spec = xasprintf("%s@%s", a.local, a.domain);
			*display = lower_dup(spec, strlen(spec));
			free(spec);
		}
	}
}

void
sort_keys_parse(const char *hdr, size_t len, struct sort_keys *k)
{
	struct message_field f;
	size_t pos = 0;
	const char *irt = NULL;
	size_t irt_len = 0;

	memset(k, 0, sizeof(*k));
	k->sent = -1;
	while (message_next_field(hdr, len, &pos, &f)) {
#define IS(n) (f.name_len == strlen(n) && ascii_strncaseeq(f.name, n, f.name_len))
		if (IS("Date") && k->sent < 0)
			k->sent = sort_parse_date(f.value, f.value_len);
		else if (IS("Subject") && k->subject == NULL)
			k->subject = sort_base_subject(f.value, f.value_len,
			    &k->reply);
		else if (IS("From") && k->from == NULL)
			first_address(&f, &k->from, &k->dfrom);
		else if (IS("To") && k->to == NULL)
			first_address(&f, &k->to, &k->dto);
		else if (IS("Cc") && k->cc == NULL)
			first_address(&f, &k->cc, NULL);
		else if (IS("Message-ID") && k->msgid == NULL) {
			struct sort_keys one;
			memset(&one, 0, sizeof(one));
			add_ids(&one, f.value, f.value_len);
			if (one.nrefs)
				k->msgid = one.refs[0];
			for (size_t q = 1; q < one.nrefs; q++)
				free(one.refs[q]);
			free(one.refs);
		} else if (IS("References"))
			add_ids(k, f.value, f.value_len);
		else if (IS("In-Reply-To") && irt == NULL) {
			irt = f.value;
			irt_len = f.value_len;
		}
#undef IS
	}
	/* In-Reply-To counts when References is missing (RFC 5256 2.2) */
	if (k->nrefs == 0 && irt)
		add_ids(k, irt, irt_len);
	if (k->subject == NULL)
		k->subject = xstrdup("");
}

void
sort_keys_clear(struct sort_keys *k)
{
	free(k->subject);
	free(k->from);
	free(k->to);
	free(k->cc);
	free(k->dfrom);
	free(k->dto);
	free(k->msgid);
	for (size_t i = 0; i < k->nrefs; i++)
		free(k->refs[i]);
	free(k->refs);
	memset(k, 0, sizeof(*k));
}

/* --- the keys as one string (the index's cache) --------------------- */

static void
pack_str(struct buf *b, const char *v)
{
	if (v == NULL)
		buf_append_str(b, "-");
	else {
		buf_printf(b, "%zu:", strlen(v));
		buf_append_str(b, v);
	}
}

char *
sort_keys_pack(const struct sort_keys *k, size_t *len)
{
	struct buf b;

	buf_init(&b);
	buf_printf(&b, "k1 %lld %d %zu ", (long long)k->sent, k->reply ? 1 : 0,
	    k->nrefs);
	pack_str(&b, k->subject);
	pack_str(&b, k->from);
	pack_str(&b, k->to);
	pack_str(&b, k->cc);
	pack_str(&b, k->dfrom);
	pack_str(&b, k->dto);
	pack_str(&b, k->msgid);
	for (size_t i = 0; i < k->nrefs; i++)
		pack_str(&b, k->refs[i]);
	if (k->tid[0])                 /* since v5 of the index */
		pack_str(&b, k->tid);
	buf_append_char(&b, '\0');
	return buf_steal(&b, len);
}

/* One field at *pos: a new string (none: NULL, *ok stays); -1 if bad. */
static int
unpack_str(const char *s, size_t len, size_t *pos, char **out)
{
	size_t p = *pos, n = 0, digits = 0;

	*out = NULL;
	if (p < len && s[p] == '-') {
		*pos = p + 1;
		return 0;
	}
	while (p < len && s[p] >= '0' && s[p] <= '9') {
		if (++digits > 9)
			return -1;
		n = n * 10 + (size_t)(s[p++] - '0');
	}
	if (digits == 0 || p >= len || s[p] != ':' || n > len - p - 1)
		return -1;
	p++;
	/* a NUL inside would make the C string shorter than it says */
	if (memchr(s + p, '\0', n) != NULL)
		return -1;
	*out = xstrndup(s + p, n);
	*pos = p + n;
	return 0;
}

int
sort_keys_unpack(const char *s, size_t len, struct sort_keys *k)
{
	long long sent;
	int reply, used = 0;
	size_t nrefs;
	char head[64];

	memset(k, 0, sizeof(*k));
	size_t hl = len < sizeof(head) - 1 ? len : sizeof(head) - 1;
	memcpy(head, s, hl);
	head[hl] = '\0';
	if (sscanf(head, "k1 %lld %d %zu %n", &sent, &reply, &nrefs,
	    &used) != 3 || used == 0 || (reply != 0 && reply != 1) ||
	    nrefs > SORT_REFS_MAX)
		return -1;
	k->sent = sent;
	k->reply = reply == 1;
	size_t pos = (size_t)used;
	char **f[] = { &k->subject, &k->from, &k->to, &k->cc, &k->dfrom,
		&k->dto, &k->msgid };
	for (size_t i = 0; i < sizeof(f) / sizeof(f[0]); i++)
		if (unpack_str(s, len, &pos, f[i]) != 0)
			goto bad;
	if (k->subject == NULL)
		goto bad;           /* sort_keys_parse always makes one */
	k->refs = xcalloc(nrefs + 1, sizeof(char *));
	for (size_t i = 0; i < nrefs; i++) {
		if (unpack_str(s, len, &pos, &k->refs[i]) != 0 ||
		    k->refs[i] == NULL)
			goto bad;
		k->nrefs++;
	}
	if (pos < len) {
		char *tid = NULL;
		bool ok = unpack_str(s, len, &pos, &tid) == 0 && tid &&
		    strlen(tid) == SORT_ID_LEN - 1 && tid[0] == 'T';
		for (size_t i = 1; ok && i < SORT_ID_LEN - 1; i++)
			ok = (tid[i] >= '0' && tid[i] <= '9') ||
			    (tid[i] >= 'a' && tid[i] <= 'f');
		if (ok)
			memcpy(k->tid, tid, SORT_ID_LEN);
		free(tid);
		if (!ok)
			goto bad;
	}
	if (pos != len)
		goto bad;
	return 0;
bad:
	sort_keys_clear(k);
	return -1;
}

static uint64_t
fnv64(const char *s)
{
	uint64_t h = 14695981039346656037u;

	for (; *s; s++)
		h = (h ^ (unsigned char)*s) * 1099511628211u;
	return h;
}

static void
hex_id(char tag, uint64_t h, char out[SORT_ID_LEN])
{
	static const char hex[] = "0123456789abcdef";

	out[0] = tag;
	for (int i = 0; i < 16; i++)
		out[1 + i] = hex[(h >> (60 - 4 * i)) & 0xf];
	out[17] = '\0';
}

uint64_t
sort_id_bits(const char *id)
{
	uint64_t v = 0;

	for (const char *p = id + 1; *p; p++)
		v = v << 4 | (uint64_t)(*p <= '9' ? *p - '0' :
		    (*p | 32) - 'a' + 10);
	return v;
}

void
sort_email_id(const char *base, char out[SORT_ID_LEN])
{
	hex_id('M', fnv64(base), out);
}

void
sort_thread_id(const struct sort_keys *k, const char *base,
    char out[SORT_ID_LEN])
{
	const char *root = k && k->nrefs ? k->refs[0] : k && k->msgid ?
	    k->msgid : NULL;

	if (k && k->tid[0])
		memcpy(out, k->tid, SORT_ID_LEN);
	else if (root)
		hex_id('T', fnv64(root), out);
	else
		hex_id('T', fnv64(base), out);
}

bool
sort_thread_root(const struct sort_keys *k, uint64_t *key)
{
	const char *root = k->nrefs ? k->refs[0] : k->msgid;

	if (root == NULL)
		return false;
	*key = fnv64(root);
	return true;
}

static uint64_t
mix64(uint64_t h, const char *s, uint64_t n)
{
	for (int i = 0; i < 8; i++)
		h = (h ^ ((n >> (8 * i)) & 0xff)) * 1099511628211u;
	for (; s && *s; s++)
		h = (h ^ (unsigned char)*s) * 1099511628211u;
	return h;
}

uint64_t
sort_thread_split(uint64_t key, const char *subject)
{
	return mix64(key ^ 0x73756a6563742121u, subject, 0);
}

bool
sort_thread_same_subject(const char *a, const char *b)
{
	return a == NULL || b == NULL || *a == '\0' || *b == '\0' ||
	    strcmp(a, b) == 0;
}

void
sort_thread_name(uint64_t key, uint64_t part, char out[SORT_ID_LEN])
{
	hex_id('T', part ? mix64(key ^ 0x7061727421212121u, NULL, part) : key,
	    out);
}
