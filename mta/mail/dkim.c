/* SPDX-License-Identifier: ISC */
/*
 * dkim.c - layer 1 (pure): DKIM's texts (dkim.h).
 */
#include "mail/dkim.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/sasl.h"
#include "base/util.h"

static bool
is_wsp(int c)
{
	return c == ' ' || c == '\t';
}

static bool
is_fws(int c)
{
	return c == ' ' || c == '\t' || c == '\r' || c == '\n';
}

static int
lower(int c)
{
	return c >= 'A' && c <= 'Z' ? c + 32 : c;
}

/* --- tag lists ----------------------------------------------------------- */

int
dkim_tags_parse(const char *s, size_t len, struct dkim_tag *t, size_t max,
    size_t *n)
{
	size_t i = 0;

	*n = 0;
	while (i < len) {
		size_t start = i, end;
		while (i < len && s[i] != ';')
			i++;
		end = i;
		if (i < len)
			i++;              /* the ';' */
		while (start < end && is_fws((unsigned char)s[start]))
			start++;
		if (start == end) {
			/* only a final ';' may leave an empty spec */
			if (end == len || i == len)
				continue;
			return -1;
		}
		size_t eq = start;
		while (eq < end && s[eq] != '=')
			eq++;
		if (eq == end)
			return -1;
		size_t ne = eq;
		while (ne > start && is_fws((unsigned char)s[ne - 1]))
			ne--;
		if (ne == start)
			return -1;
		/* tag-name = ALPHA *ALNUMPUNC */
		if (!((s[start] | 32) >= 'a' && (s[start] | 32) <= 'z'))
			return -1;
		for (size_t k = start; k < ne; k++) {
			int c = (unsigned char)s[k];
			if (!((c | 32) >= 'a' && (c | 32) <= 'z') &&
			    !(c >= '0' && c <= '9') && c != '_')
				return -1;
		}
		size_t vs = eq + 1, ve = end;
		while (vs < ve && is_fws((unsigned char)s[vs]))
			vs++;
		while (ve > vs && is_fws((unsigned char)s[ve - 1]))
			ve--;
		for (size_t k = 0; k < *n; k++)
			if (t[k].nlen == ne - start &&
			    memcmp(t[k].name, s + start, t[k].nlen) == 0)
				return -1;
		if (*n == max)
			return -1;
		t[*n] = (struct dkim_tag){ s + start, s + vs, ne - start,
		    ve - vs };
		(*n)++;
	}
	return 0;
}

const struct dkim_tag *
dkim_tag_find(const struct dkim_tag *t, size_t n, const char *name)
{
	size_t l = strlen(name);

	for (size_t i = 0; i < n; i++)
		if (t[i].nlen == l && memcmp(t[i].name, name, l) == 0)
			return &t[i];
	return NULL;
}

static bool
tag_is(const struct dkim_tag *t, const char *v)
{
	return t && t->vlen == strlen(v) && strncmp(t->val, v, t->vlen) == 0;
}

int
dkim_b64_decode(const char *s, size_t len, unsigned char *out, size_t outsz)
{
	char *packed = xmalloc(len + 1), *dec;
	size_t n = 0, got = 0;
	int rc = -1;

	for (size_t i = 0; i < len; i++)
		if (!is_fws((unsigned char)s[i]))
			packed[n++] = s[i];
	dec = xmalloc(n + 1);
	if (sasl_b64_decode(packed, n, dec, n + 1, &got) == 0 && got <= outsz) {
		memcpy(out, dec, got);
		rc = (int)got;
	}
	free(packed);
	free(dec);
	return rc;
}

/* --- the body ------------------------------------------------------------ */

void
dkim_body_init(struct dkim_body *b, enum dkim_canon c, uint64_t limit,
    dkim_out_fn out, void *arg)
{
	memset(b, 0, sizeof(*b));
	b->c = c;
	b->limit = limit;
	b->out = out;
	b->arg = arg;
}

static void
emit(struct dkim_body *b, const char *p, size_t n)
{
	b->total += n;
	if (b->done >= b->limit)
		return;
	if (n > b->limit - b->done)
		n = (size_t)(b->limit - b->done);
	b->done += n;
	b->out(b->arg, p, n);
}

static void
flush_empty(struct dkim_body *b)
{
	for (; b->empty; b->empty--)
		emit(b, "\r\n", 2);
}

static void
content(struct dkim_body *b, const char *p, size_t n)
{
	if (b->c == DKIM_RELAXED) {
		size_t i = 0;
		while (i < n) {
			if (is_wsp((unsigned char)p[i])) {
				b->wsp = true;
				i++;
				continue;
			}
			size_t j = i;
			while (j < n && !is_wsp((unsigned char)p[j]))
				j++;
			flush_empty(b);
			if (b->wsp)
				emit(b, " ", 1);
			b->wsp = false;
			emit(b, p + i, j - i);
			b->line = true;
			i = j;
		}
		return;
	}
	flush_empty(b);
	emit(b, p, n);
	b->line = true;
}

static void
line_end(struct dkim_body *b)
{
	b->wsp = false;
	if (b->line) {
		emit(b, "\r\n", 2);
		b->line = false;
	} else
		b->empty++;
}

void
dkim_body_feed(struct dkim_body *b, const char *p, size_t n)
{
	size_t i = 0;

	while (i < n) {
		if (b->cr) {
			b->cr = false;
			if (p[i] == '\n') {
				line_end(b);
				i++;
				continue;
			}
			content(b, "\r", 1);      /* a CR alone */
		}
		size_t j = i;
		while (j < n && p[j] != '\r' && p[j] != '\n')
			j++;
		if (j > i)
			content(b, p + i, j - i);
		if (j == n)
			break;
		if (p[j] == '\r')
			b->cr = true;
		else
			line_end(b);
		i = j + 1;
	}
}

void
dkim_body_end(struct dkim_body *b)
{
	if (b->cr) {
		b->cr = false;
		content(b, "\r", 1);
	}
	if (b->line) {
		emit(b, "\r\n", 2);
		b->line = false;
	}
	/* simple: an empty body is one CRLF; relaxed: nothing */
	if (b->c == DKIM_SIMPLE && b->total == 0)
		emit(b, "\r\n", 2);
}

/* --- header fields ------------------------------------------------------- */

size_t
dkim_fields(const char *msg, size_t len, struct dkim_field **f, size_t *body)
{
	size_t cap = 16, n = 0, i = 0;

	*f = xcalloc(cap, sizeof(**f));
	while (i < len) {
		/* the empty line ends the section */
		if (msg[i] == '\n') {
			i++;
			break;
		}
		if (msg[i] == '\r' && i + 1 < len && msg[i + 1] == '\n') {
			i += 2;
			break;
		}
		size_t start = i;
		do {              /* the line and its continuation lines */
			while (i < len && msg[i] != '\n')
				i++;
			if (i < len)
				i++;
		} while (i < len && is_wsp((unsigned char)msg[i]));
		if (is_wsp((unsigned char)msg[start]))
			continue;         /* a continuation with no field */
		size_t c = start;
		while (c < i && msg[c] != ':' && msg[c] != '\n')
			c++;
		if (c == i || msg[c] != ':' || c == start)
			continue;         /* no field */
		size_t nl = c;
		while (nl > start && is_wsp((unsigned char)msg[nl - 1]))
			nl--;
		if (n == cap) {
			cap *= 2;
			*f = xreallocarray(*f, cap, sizeof(**f));
		}
		(*f)[n++] = (struct dkim_field){ msg + start, i - start,
		    nl - start };
	}
	*body = i;
	return n;
}

void
dkim_canon_field(enum dkim_canon c, const char *p, size_t len, size_t nlen,
    struct buf *out)
{
	if (c == DKIM_SIMPLE) {
		for (size_t i = 0; i < len; i++) {
			if (p[i] == '\n' && (i == 0 || p[i - 1] != '\r'))
				buf_append_char(out, '\r');
			buf_append_char(out, p[i]);
		}
		if (len == 0 || p[len - 1] != '\n')
			buf_append(out, "\r\n", 2);
		return;
	}
	for (size_t i = 0; i < nlen; i++)
		buf_append_char(out, (char)lower((unsigned char)p[i]));
	buf_append_char(out, ':');
	size_t i = nlen;
	while (i < len && p[i] != ':')
		i++;
	i++;
	bool wsp = false, any = false;
	for (; i < len; i++) {
		int ch = (unsigned char)p[i];
		if (ch == '\r' || ch == '\n')
			continue;          /* unfolded */
		if (is_wsp(ch)) {
			wsp = true;
			continue;
		}
		if (wsp && any)
			buf_append_char(out, ' ');
		wsp = false;
		any = true;
		buf_append_char(out, (char)ch);
	}
	buf_append(out, "\r\n", 2);
}

/* --- signatures ---------------------------------------------------------- */

void
dkim_sig_clear(struct dkim_sig *s)
{
	for (size_t i = 0; i < s->nh; i++)
		free(s->hnames[i]);
	memset(s, 0, sizeof(*s));
	s->t = s->x = -1;
}

static bool
copy_lower(const struct dkim_tag *t, char *out, size_t outsz)
{
	if (t->vlen == 0 || t->vlen >= outsz)
		return false;
	for (size_t i = 0; i < t->vlen; i++)
		out[i] = (char)lower((unsigned char)t->val[i]);
	out[t->vlen] = '\0';
	return true;
}

static bool
valid_domain(const char *d)
{
	size_t label = 0;

	if (*d == '\0' || *d == '.')
		return false;
	for (const char *p = d; *p; p++) {
		int c = (unsigned char)*p;
		if (c == '.') {
			if (label == 0)
				return false;
			label = 0;
		} else if ((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
		    c == '-' || c == '_') {
			if (++label > 63)
				return false;
		} else
			return false;
	}
	return label > 0;
}

/* digits only, at most max of them (RFC 6376: 1*12DIGIT, l= 1*76) */
static bool
number(const struct dkim_tag *t, size_t max, uint64_t *v)
{
	*v = 0;
	if (t == NULL || t->vlen == 0 || t->vlen > max)
		return false;
	for (size_t i = 0; i < t->vlen; i++) {
		if (t->val[i] < '0' || t->val[i] > '9')
			return false;
		if (*v < UINT64_MAX / 10)
			*v = *v * 10 + (uint64_t)(t->val[i] - '0');
		else
			*v = UINT64_MAX;
	}
	return true;
}

static bool
parse_canon(const struct dkim_tag *t, struct dkim_sig *s)
{
	const char *v = t->val, *slash = memchr(v, '/', t->vlen);
	size_t hl = slash ? (size_t)(slash - v) : t->vlen;

	if (hl == 6 && strncmp(v, "simple", 6) == 0)
		s->hc = DKIM_SIMPLE;
	else if (hl == 7 && strncmp(v, "relaxed", 7) == 0)
		s->hc = DKIM_RELAXED;
	else
		return false;
	if (slash == NULL) {
		s->bc = DKIM_SIMPLE;
		return true;
	}
	size_t bl = t->vlen - hl - 1;
	if (bl == 6 && strncmp(slash + 1, "simple", 6) == 0)
		s->bc = DKIM_SIMPLE;
	else if (bl == 7 && strncmp(slash + 1, "relaxed", 7) == 0)
		s->bc = DKIM_RELAXED;
	else
		return false;
	return true;
}

/* The next item of the colon-separated list in v from *i: its span
 * [*a, *e), white space trimmed; false when the list is done. */
static bool
list_next(const struct dkim_tag *v, size_t *i, size_t *a, size_t *e)
{
	size_t j = *i;

	if (*i > v->vlen)
		return false;
	while (j < v->vlen && v->val[j] != ':')
		j++;
	*a = *i;
	*e = j;
	while (*a < *e && is_fws((unsigned char)v->val[*a]))
		(*a)++;
	while (*e > *a && is_fws((unsigned char)v->val[*e - 1]))
		(*e)--;
	*i = j + 1;
	return true;
}

static bool
parse_names(const struct dkim_tag *t, struct dkim_sig *s)
{
	size_t i = 0, a, e;
	bool from = false;

	while (list_next(t, &i, &a, &e)) {
		if (a == e || s->nh == DKIM_HNAMES_MAX)
			return false;
		for (size_t k = a; k < e; k++) {
			int c = (unsigned char)t->val[k];
			if (c <= ' ' || c >= 127 || c == ':')
				return false;
		}
		char *name = xstrndup(t->val + a, e - a);
		for (char *p = name; *p; p++)
			*p = (char)lower((unsigned char)*p);
		from |= strcmp(name, "from") == 0;
		s->hnames[s->nh++] = name;
	}
	return from;
}

/*
 * A DKIM-Signature (instance NULL) or an ARC-Message-Signature (RFC
 * 8617 4.1.2: no v=, i= is the instance, ARC-Seal not signed).
 */
static int
sig_parse(const char *val, size_t len, struct dkim_sig *s, unsigned *instance,
    const char **why)
{
	struct dkim_tag t[DKIM_TAGS_MAX];
	const struct dkim_tag *v;
	size_t n;
	uint64_t num;
	int bl;

	memset(s, 0, sizeof(*s));
	s->t = s->x = -1;
	if (dkim_tags_parse(val, len, t, DKIM_TAGS_MAX, &n) != 0) {
		*why = "not a tag list";
		return -1;
	}
	if (instance == NULL && !tag_is(dkim_tag_find(t, n, "v"), "1")) {
		*why = "v= is not 1";
		return -1;
	}
	if (instance && (!number(dkim_tag_find(t, n, "i"), 2, &num) ||
	    num < 1 || num > ARC_INSTANCE_MAX)) {
		*why = "bad or missing i=";
		return -1;
	}
	if (instance)
		*instance = (unsigned)num;
	v = dkim_tag_find(t, n, "a");
	if (tag_is(v, "rsa-sha256"))
		s->alg = DKIM_RSA_SHA256;
	else if (tag_is(v, "ed25519-sha256"))
		s->alg = DKIM_ED25519_SHA256;
	else {
		*why = tag_is(v, "rsa-sha1") ? "rsa-sha1 is not accepted "
		    "(RFC 8301)" : "unknown algorithm";
		return -1;
	}
	if ((v = dkim_tag_find(t, n, "b")) == NULL ||
	    (bl = dkim_b64_decode(v->val, v->vlen, s->b, sizeof(s->b))) <= 0) {
		*why = "bad or missing b=";
		goto bad;
	}
	s->blen = (size_t)bl;
	if ((v = dkim_tag_find(t, n, "bh")) == NULL ||
	    (bl = dkim_b64_decode(v->val, v->vlen, s->bh, sizeof(s->bh))) !=
	    32) {
		*why = "bad or missing bh=";
		goto bad;
	}
	s->bhlen = (size_t)bl;
	if ((v = dkim_tag_find(t, n, "d")) == NULL ||
	    !copy_lower(v, s->d, sizeof(s->d)) || !valid_domain(s->d)) {
		*why = "bad or missing d=";
		goto bad;
	}
	if ((v = dkim_tag_find(t, n, "s")) == NULL ||
	    !copy_lower(v, s->s, sizeof(s->s)) || !valid_domain(s->s)) {
		*why = "bad or missing s=";
		goto bad;
	}
	if ((v = dkim_tag_find(t, n, "h")) == NULL || !parse_names(v, s)) {
		*why = "h= is missing or does not name From";
		goto bad;
	}
	s->hc = s->bc = DKIM_SIMPLE;
	if ((v = dkim_tag_find(t, n, "c")) && !parse_canon(v, s)) {
		*why = "unknown canonicalization";
		goto bad;
	}
	for (size_t k = 0; instance && k < s->nh; k++)
		if (strcmp(s->hnames[k], "arc-seal") == 0) {
			*why = "h= names ARC-Seal";
			goto bad;
		}
	if (instance)
		(void)snprintf(s->i, sizeof(s->i), "@%s", s->d);
	else if ((v = dkim_tag_find(t, n, "i"))) {
		const char *at = memchr(v->val, '@', v->vlen);
		if (at == NULL || v->vlen >= 256) {
			*why = "bad i=";
			goto bad;
		}
		memcpy(s->i, v->val, v->vlen);
		s->i[v->vlen] = '\0';
		/* its domain is d= or under it */
		char dom[256];
		size_t dl = v->vlen - (size_t)(at + 1 - v->val);
		for (size_t k = 0; k < dl; k++)
			dom[k] = (char)lower((unsigned char)at[1 + k]);
		dom[dl] = '\0';
		size_t sl = strlen(s->d);
		if (!(strcmp(dom, s->d) == 0 || (dl > sl && dom[dl - sl - 1] ==
		    '.' && strcmp(dom + dl - sl, s->d) == 0))) {
			*why = "i= is not in d=";
			goto bad;
		}
	} else
		(void)snprintf(s->i, sizeof(s->i), "@%s", s->d);
	if ((v = dkim_tag_find(t, n, "l"))) {
		if (!number(v, 76, &s->l)) {
			*why = "bad l=";
			goto bad;
		}
		s->has_l = true;
	}
	if ((v = dkim_tag_find(t, n, "q"))) {
		bool dns = false;
		for (size_t k = 0; k + 7 <= v->vlen; k++)
			if (strncmp(v->val + k, "dns/txt", 7) == 0)
				dns = true;
		if (!dns) {
			*why = "q= has no dns/txt";
			goto bad;
		}
	}
	if ((v = dkim_tag_find(t, n, "t"))) {
		if (!number(v, 12, &num)) {
			*why = "bad t=";
			goto bad;
		}
		s->t = (int64_t)num;
	}
	if ((v = dkim_tag_find(t, n, "x"))) {
		if (!number(v, 12, &num) || (s->t >= 0 && (int64_t)num <
		    s->t)) {
			*why = "bad x=";
			goto bad;
		}
		s->x = (int64_t)num;
	}
	return 0;
bad:
	dkim_sig_clear(s);
	return -1;
}

int
dkim_sig_parse(const char *val, size_t len, struct dkim_sig *s,
    const char **why)
{
	return sig_parse(val, len, s, NULL, why);
}

int
dkim_ams_parse(const char *val, size_t len, struct dkim_sig *s,
    unsigned *instance, const char **why)
{
	return sig_parse(val, len, s, instance, why);
}

/* The field with its b= tag's value taken out (RFC 6376 3.7). */
static void
strip_b(const char *p, size_t len, struct buf *out)
{
	const char *colon = memchr(p, ':', len);
	size_t i = colon ? (size_t)(colon - p) + 1 : len;

	buf_append(out, p, i);
	while (i < len) {
		size_t j = i;
		while (j < len && p[j] != ';')
			j++;
		size_t a = i;
		while (a < j && is_fws((unsigned char)p[a]))
			a++;
		size_t eq = a;
		while (eq < j && p[eq] != '=')
			eq++;
		size_t ne = eq;
		while (ne > a && is_fws((unsigned char)p[ne - 1]))
			ne--;
		if (eq < j && ne - a == 1 && p[a] == 'b') {
			buf_append(out, p + i, eq + 1 - i);
			/* the value goes, its trailing line end stays (the
			 * field ends there) */
			size_t e = j;
			while (e > eq + 1 && (p[e - 1] == '\n' ||
			    p[e - 1] == '\r'))
				e--;
			buf_append(out, p + e, j - e);
		} else
			buf_append(out, p + i, j - i);
		if (j < len)
			buf_append_char(out, ';');
		i = j + 1;
	}
}

static bool
name_is(const struct dkim_field *f, const char *name)
{
	size_t l = strlen(name);

	if (f->nlen != l)
		return false;
	for (size_t i = 0; i < l; i++)
		if (lower((unsigned char)f->p[i]) != name[i])
			return false;
	return true;
}

void
dkim_signed_text(const struct dkim_field *f, size_t nf, ssize_t self,
    enum dkim_canon hc, char *const *names, size_t nnames, const char *sig,
    size_t siglen, struct buf *out)
{
	bool *used = xcalloc(nf + 1, sizeof(bool));
	struct buf b;

	if (self >= 0 && (size_t)self < nf)
		used[self] = true;
	for (size_t i = 0; i < nnames; i++)
		for (size_t k = nf; k-- > 0;)
			if (!used[k] && name_is(&f[k], names[i])) {
				used[k] = true;
				dkim_canon_field(hc, f[k].p, f[k].len,
				    f[k].nlen, out);
				break;
			}
	free(used);
	buf_init(&b);
	strip_b(sig, siglen, &b);
	const char *colon = memchr(sig, ':', siglen);
	size_t nl = colon ? (size_t)(colon - sig) : 0;
	while (nl > 0 && is_wsp((unsigned char)sig[nl - 1]))
		nl--;
	size_t before = out->len;
	dkim_canon_field(hc, b.data ? b.data : "", b.len, nl, out);
	buf_clear(&b);
	/* without its final CRLF */
	if (out->len >= before + 2)
		out->len -= 2;
	if (out->data)
		out->data[out->len] = '\0';
}

static const char *const sign_names[] = { "from", "reply-to", "subject",
	"date", "to", "cc", "message-id", "in-reply-to", "references",
	"mime-version", "content-type", "content-transfer-encoding",
	"content-disposition", "list-id", "list-help", "list-unsubscribe",
	"list-unsubscribe-post", "list-post", "list-owner", "list-archive",
	"sender", NULL };
static const char *const oversign[] = { "from", "to", "subject", "date",
	NULL };

/* Appends text to a field, folding before it if the line would pass 76. */
static void
fold_add(struct buf *out, size_t *col, const char *text)
{
	size_t l = strlen(text);

	if (*col + l + 1 > 76) {
		buf_append_str(out, "\n\t");
		*col = 8;
	} else if (*col > 0) {
		buf_append_char(out, ' ');
		(*col)++;
	}
	buf_append_str(out, text);
	*col += l;
}

void
dkim_sign_field(const struct dkim_field *f, size_t nf, enum dkim_alg alg,
    const char *domain, const char *selector, int64_t t,
    const unsigned char bh[32], unsigned instance, struct buf *out,
    char ***names, size_t *nnames)
{
	char tmp[600], bh64[64];
	size_t col = 0, cap = 8;

	*names = xcalloc(cap, sizeof(char *));
	*nnames = 0;
	for (size_t i = 0; sign_names[i]; i++) {
		size_t have = 0;
		for (size_t k = 0; k < nf; k++)
			have += name_is(&f[k], sign_names[i]);
		for (size_t k = 0; oversign[k]; k++)
			have += strcmp(oversign[k], sign_names[i]) == 0;
		for (; have; have--) {
			if (*nnames + 1 >= cap) {
				cap *= 2;
				*names = xreallocarray(*names, cap,
				    sizeof(char *));
			}
			(*names)[(*nnames)++] = xstrdup(sign_names[i]);
		}
	}
	if (instance == 0) {
		buf_append_str(out, "DKIM-Signature:");
		col = 15;
		fold_add(out, &col, "v=1;");
	} else {
		buf_append_str(out, "ARC-Message-Signature:");
		col = 22;
		(void)snprintf(tmp, sizeof(tmp), "i=%u;", instance);
		fold_add(out, &col, tmp);
	}
	fold_add(out, &col, alg == DKIM_RSA_SHA256 ? "a=rsa-sha256;" :
	    "a=ed25519-sha256;");
	fold_add(out, &col, "c=relaxed/relaxed;");
	(void)snprintf(tmp, sizeof(tmp), "d=%s;", domain);
	fold_add(out, &col, tmp);
	(void)snprintf(tmp, sizeof(tmp), "s=%s;", selector);
	fold_add(out, &col, tmp);
	(void)snprintf(tmp, sizeof(tmp), "t=%lld;", (long long)t);
	fold_add(out, &col, tmp);
	for (size_t i = 0; i < *nnames; i++) {
		(void)snprintf(tmp, sizeof(tmp), "%s%s%s", i == 0 ? "h=" : "",
		    (*names)[i], i + 1 == *nnames ? ";" : ":");
		/* h= continues without a space: fold only between names */
		if (i > 0 && col + strlen(tmp) <= 76) {
			buf_append_str(out, tmp);
			col += strlen(tmp);
		} else
			fold_add(out, &col, tmp);
	}
	(void)sasl_b64_encode((const char *)bh, 32, bh64, sizeof(bh64));
	(void)snprintf(tmp, sizeof(tmp), "bh=%s;", bh64);
	fold_add(out, &col, tmp);
	fold_add(out, &col, "b=");
}

void
dkim_append_b(struct buf *field, const unsigned char *sig, size_t n)
{
	size_t cap = (n + 2) / 3 * 4 + 1;
	char *b64 = xmalloc(cap);

	if (sasl_b64_encode((const char *)sig, n, b64, cap) == 0) {
		size_t l = strlen(b64);
		for (size_t i = 0; i < l; i += 64) {
			buf_append_str(field, "\n\t");
			buf_append(field, b64 + i, l - i < 64 ? l - i : 64);
		}
	}
	buf_append_char(field, '\n');
	free(b64);
}

void
dkim_names_free(char **names, size_t n)
{
	for (size_t i = 0; i < n; i++)
		free(names[i]);
	free(names);
}

/* --- key records ---------------------------------------------------------- */

/* Whether the colon-separated list v has item (or "*" if star). */
static bool
list_has(const struct dkim_tag *v, const char *item, bool star)
{
	size_t i = 0, a, e, l = strlen(item);

	while (list_next(v, &i, &a, &e))
		if ((e - a == l && strncmp(v->val + a, item, l) == 0) ||
		    (star && e - a == 1 && v->val[a] == '*'))
			return true;
	return false;
}

int
dkim_key_parse(const char *txt, size_t len, struct dkim_key *k,
    const char **why)
{
	struct dkim_tag t[DKIM_TAGS_MAX];
	const struct dkim_tag *v;
	size_t n;

	memset(k, 0, sizeof(*k));
	if (dkim_tags_parse(txt, len, t, DKIM_TAGS_MAX, &n) != 0) {
		*why = "the key record is not a tag list";
		return -1;
	}
	if ((v = dkim_tag_find(t, n, "v")) && (!tag_is(v, "DKIM1") ||
	    v != &t[0])) {
		*why = "the key record's v= is not DKIM1";
		return -1;
	}
	if ((v = dkim_tag_find(t, n, "h")) && !list_has(v, "sha256", false)) {
		*why = "the key is not for sha256";
		return -1;
	}
	v = dkim_tag_find(t, n, "k");
	if (v == NULL || tag_is(v, "rsa"))
		k->alg = DKIM_RSA_SHA256;
	else if (tag_is(v, "ed25519"))
		k->alg = DKIM_ED25519_SHA256;
	else {
		*why = "unknown key type";
		return -1;
	}
	if ((v = dkim_tag_find(t, n, "s")) && !list_has(v, "email", true)) {
		*why = "the key is not for email";
		return -1;
	}
	if ((v = dkim_tag_find(t, n, "t"))) {
		k->testing = list_has(v, "y", false);
		k->strict = list_has(v, "s", false);
	}
	if ((v = dkim_tag_find(t, n, "p")) == NULL) {
		*why = "the key record has no p=";
		return -1;
	}
	if (v->vlen == 0)
		return 0;                  /* revoked */
	int pl = dkim_b64_decode(v->val, v->vlen, k->p, sizeof(k->p));
	if (pl <= 0) {
		*why = "the key record's p= is not base64";
		return -1;
	}
	k->plen = (size_t)pl;
	return 0;
}
