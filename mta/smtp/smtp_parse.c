/* SPDX-License-Identifier: ISC */
/*
 * smtp_parse.c - layer 1 (pure). Turns one command line into a struct
 * smtp_cmd. Grammar from RFC 5321 4.1.1 (verbs), 4.1.2 (paths: Dot-string
 * and Quoted-string local parts, Domain, address literals, the obsolete
 * A-d-l source route which is parsed and dropped per 4.1.1.3 / C),
 * ESMTP parameters per 4.1.2 esmtp-param. Limits per 4.5.3.1.
 *
 * Deliberately lenient in one place, as most servers are: one or more
 * spaces may follow "MAIL FROM:" / "RCPT TO:" before the path.
 * 8-bit bytes in paths are refused (no SMTPUTF8 yet).
 */
#include "smtp/smtp_parse.h"

#include <string.h>

#include "base/intl.h"
#include "base/util.h"

static const struct {
	const char *name;
	enum smtp_verb verb;
} verbs[] = {
	{ "EHLO", SMTP_VERB_EHLO }, { "HELO", SMTP_VERB_HELO },
	{ "MAIL", SMTP_VERB_MAIL }, { "RCPT", SMTP_VERB_RCPT },
	{ "DATA", SMTP_VERB_DATA }, { "RSET", SMTP_VERB_RSET },
	{ "NOOP", SMTP_VERB_NOOP }, { "QUIT", SMTP_VERB_QUIT },
	{ "VRFY", SMTP_VERB_VRFY }, { "EXPN", SMTP_VERB_EXPN },
	{ "HELP", SMTP_VERB_HELP }, { "STARTTLS", SMTP_VERB_STARTTLS },
	{ "AUTH", SMTP_VERB_AUTH }, { "BDAT", SMTP_VERB_BDAT },
	{ "LHLO", SMTP_VERB_LHLO },
};

const char *
smtp_verb_name(enum smtp_verb verb)
{
	for (size_t i = 0; i < TERN_ARRAY_LEN(verbs); i++)
		if (verbs[i].verb == verb)
			return verbs[i].name;
	return "UNKNOWN";
}

static bool
is_alpha(int c)
{
	return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z');
}

static bool
is_digit(int c)
{
	return c >= '0' && c <= '9';
}

/* atext, RFC 5322 3.2.3 */
static bool
is_atext(int c)
{
	return is_alpha(c) || is_digit(c) || (c != '\0' &&
	    strchr("!#$%&'*+-/=?^_`{|}~", c) != NULL);
}

/* qtextSMTP and the second octet of quoted-pairSMTP, RFC 5321 4.1.2 */
static bool
is_qtext(int c)
{
	return c >= 32 && c <= 126 && c != '"' && c != '\\';
}

/* sub-domain *("." sub-domain); each Let-dig [Ldh-str], or with intl
 * a U-label (RFC 6531 3.3) that IDNA accepts */
static bool
valid_dotted_domain(const char *s, size_t len, bool intl)
{
	if (intl && !intl_is_ascii(s, len)) {
		char d[SMTP_DOMAIN_MAX + 1], a[SMTP_DOMAIN_MAX + 1];
		if (len > SMTP_DOMAIN_MAX || !intl_utf8_valid(s, len))
			return false;
		memcpy(d, s, len);
		d[len] = '\0';
		/* its A-label form must be a valid ASCII domain */
		return intl_domain_ascii(d, a, sizeof(a)) == 0 &&
		    valid_dotted_domain(a, strlen(a), false);
	}
	size_t label = 0;

	if (len == 0 || len > SMTP_DOMAIN_MAX)
		return false;
	for (size_t i = 0; i < len; i++) {
		int c = (unsigned char)s[i];
		if (c == '.') {
			if (label == 0 || s[i - 1] == '-')
				return false;
			label = 0;
			continue;
		}
		if (!is_alpha(c) && !is_digit(c) && c != '-')
			return false;
		if (c == '-' && label == 0)
			return false;
		if (++label > 63)
			return false;
	}
	return label > 0 && s[len - 1] != '-';
}

static bool
valid_ipv4(const char *s, size_t len)
{
	int parts = 0;
	size_t i = 0;

	while (i < len) {
		unsigned v = 0;
		size_t start = i;
		while (i < len && is_digit((unsigned char)s[i]) && i - start < 3)
			v = v * 10 + (unsigned)(s[i++] - '0');
		if (i == start || v > 255)
			return false;
		parts++;
		if (i == len)
			break;
		if (s[i] != '.' || parts == 4)
			return false;
		i++;
		if (i == len)
			return false;
	}
	return parts == 4;
}

/* "[" ( IPv4 / "IPv6:" hex-and-colons / tag ":" dcontent ) "]" */
static bool
valid_address_literal(const char *s, size_t len)
{
	if (len < 3 || s[0] != '[' || s[len - 1] != ']')
		return false;
	s++;
	len -= 2;
	if (len > 5 && ascii_strncaseeq(s, "IPv6:", 5)) {
		size_t colons = 0;
		for (size_t i = 5; i < len; i++) {
			int c = (unsigned char)s[i];
			if (c == ':')
				colons++;
			else if (!is_digit(c) && !(c >= 'a' && c <= 'f') &&
			    !(c >= 'A' && c <= 'F') && c != '.')
				return false;
		}
		return colons >= 2 && colons <= 7;
	}
	return valid_ipv4(s, len);
}

bool
smtp_valid_domain(const char *s, size_t len)
{
	if (len == 0 || len > SMTP_DOMAIN_MAX)
		return false;
	if (s[0] == '[')
		return valid_address_literal(s, len);
	return valid_dotted_domain(s, len, false);
}

/*
 * Parses a Mailbox starting at s[*pos], stopping at '>' or end; fills addr.
 */
static int
parse_mailbox_at(const char *s, size_t len, size_t *pos, struct smtp_addr *a)
{
	size_t i = *pos, n = 0;

	memset(a, 0, sizeof(*a));
	if (i < len && s[i] == '"') {
		a->quoted = true;
		i++;
		for (;;) {
			if (i >= len)
				return -1;
			int c = (unsigned char)s[i];
			if (c == '"')
				break;
			if (c == '\\') {
				if (i + 1 >= len)
					return -1;
				c = (unsigned char)s[++i];
				if (c < 32 || c > 126)
					return -1;
			} else if (!is_qtext(c) && c < 0x80)
				return -1;
			if (n >= SMTP_LOCAL_MAX)
				return -1;
			a->local[n++] = (char)c;
			i++;
		}
		i++; /* closing quote */
	} else {
		bool dot_ok = false;
		while (i < len && s[i] != '@' && s[i] != '>') {
			int c = (unsigned char)s[i];
			if (c == '.') {
				if (!dot_ok)
					return -1;
				dot_ok = false;
			} else if (is_atext(c) || c >= 0x80)
				dot_ok = true;
			else
				return -1;
			if (n >= SMTP_LOCAL_MAX)
				return -1;
			a->local[n++] = (char)c;
			i++;
		}
		if (n == 0 || !dot_ok)
			return -1;
	}
	a->local[n] = '\0';
	/* RFC 6531 3.3: UTF8-non-ascii in atext and qtext, UTF-8 only */
	if (!intl_is_ascii(a->local, n)) {
		if (!intl_utf8_valid(a->local, n))
			return -1;
		a->utf8 = true;
	}
	if (i >= len || s[i] != '@') {
		/* RFC 5321 4.1.1.3: <Postmaster> without a domain. */
		if (!a->quoted && ascii_strcaseeq(a->local, "postmaster")) {
			*pos = i;
			return 0;
		}
		return -1;
	}
	i++;
	size_t dstart = i;
	while (i < len && s[i] != '>')
		i++;
	size_t dlen = i - dstart;
	if (dlen >= sizeof(a->domain) || !(s[dstart] == '[' ?
	    valid_address_literal(s + dstart, dlen) :
	    valid_dotted_domain(s + dstart, dlen, true)))
		return -1;
	if (!intl_is_ascii(s + dstart, dlen))
		a->utf8 = true;
	memcpy(a->domain, s + dstart, i - dstart);
	a->domain[i - dstart] = '\0';
	*pos = i;
	return 0;
}

int
smtp_parse_mailbox(const char *s, size_t len, struct smtp_addr *addr)
{
	size_t pos = 0;

	if (parse_mailbox_at(s, len, &pos, addr) != 0 || pos != len)
		return -1;
	return 0;
}

/* "<" [ A-d-l ":" ] Mailbox ">" | "<>" ; returns index after '>' */
static int
parse_path(const char *s, size_t len, size_t *pos, struct smtp_addr *a,
    bool allow_null)
{
	size_t i = *pos;

	if (i >= len || s[i] != '<')
		return -1;
	i++;
	if (i < len && s[i] == '>') {
		if (!allow_null)
			return -1;
		memset(a, 0, sizeof(*a));
		a->null = true;
		*pos = i + 1;
		return 0;
	}
	if (i < len && s[i] == '@') {
		/* A-d-l: "@" Domain *( "," "@" Domain ) ":" -- ignored. */
		for (;;) {
			size_t d = ++i;
			while (i < len && s[i] != ',' && s[i] != ':')
				i++;
			if (i >= len || !smtp_valid_domain(s + d, i - d))
				return -1;
			if (s[i] == ':')
				break;
			i++; /* ',' */
			if (i >= len || s[i] != '@')
				return -1;
		}
		i++;
	}
	if (parse_mailbox_at(s, len, &i, a) != 0)
		return -1;
	if (i >= len || s[i] != '>')
		return -1;
	if (i + 1 - *pos > SMTP_PATH_MAX)
		return -1;
	*pos = i + 1;
	return 0;
}

/* esmtp-param *(SP esmtp-param); keys upper-cased in place. */
static enum smtp_parse_status
parse_params(char *s, struct smtp_cmd *cmd)
{
	char *p = s;

	cmd->nparams = 0;
	while (*p == ' ')
		p++;
	while (*p) {
		char *key = p, *value = NULL;
		while (*p && *p != ' ' && *p != '=')
			p++;
		if (p == key)
			return SMTP_PARSE_BAD_PARAM;
		for (char *k = key; k < p; k++) {
			if (!is_alpha((unsigned char)*k) &&
			    !is_digit((unsigned char)*k) &&
			    !(*k == '-' && k != key))
				return SMTP_PARSE_BAD_PARAM;
			if (*k >= 'a' && *k <= 'z')
				*k = (char)(*k - 'a' + 'A');
		}
		if (*p == '=') {
			*p++ = '\0';
			value = p;
			while (*p && *p != ' ') {
				int c = (unsigned char)*p;
				if (c < 33 || c > 126 || c == '=')
					return SMTP_PARSE_BAD_PARAM;
				p++;
			}
			if (p == value)
				return SMTP_PARSE_BAD_PARAM;
		}
		if (*p == ' ')
			*p++ = '\0';
		while (*p == ' ')
			p++;
		if (cmd->nparams >= SMTP_PARAMS_MAX ||
		    smtp_cmd_param(cmd, key) != NULL)   /* each key once */
			return SMTP_PARSE_BAD_PARAM;
		cmd->params[cmd->nparams].key = key;
		cmd->params[cmd->nparams].value = value;
		cmd->nparams++;
	}
	return SMTP_PARSE_OK;
}

const struct smtp_param *
smtp_cmd_param(const struct smtp_cmd *cmd, const char *key)
{
	for (size_t i = 0; i < cmd->nparams; i++)
		if (strcmp(cmd->params[i].key, key) == 0)
			return &cmd->params[i];
	return NULL;
}

static enum smtp_parse_status
parse_mail_rcpt(struct smtp_cmd *cmd, const char *keyword, bool is_mail)
{
	char *s = cmd->storage + (cmd->arg - cmd->storage);
	size_t klen = strlen(keyword), len, pos;
	enum smtp_parse_status bad = is_mail ? SMTP_PARSE_BAD_SENDER :
	    SMTP_PARSE_BAD_RCPT;

	if (!ascii_strncaseeq(s, keyword, klen))
		return SMTP_PARSE_SYNTAX;
	s += klen;
	while (*s == ' ')
		s++;
	len = strlen(s);
	pos = 0;
	if (len == 0 || s[0] != '<')
		return SMTP_PARSE_SYNTAX;
	if (parse_path(s, len, &pos, &cmd->addr, is_mail) != 0)
		return bad;
	if (!is_mail && cmd->addr.domain[0] == '\0' && !cmd->addr.null &&
	    !ascii_strcaseeq(cmd->addr.local, "postmaster"))
		return bad;
	if (is_mail && !cmd->addr.null && cmd->addr.domain[0] == '\0')
		return bad;
	if (pos < len && s[pos] != ' ')
		return bad;
	return parse_params(s + pos, cmd);
}

enum smtp_parse_status
smtp_parse_command(const char *line, size_t len, struct smtp_cmd *cmd)
{
	size_t vlen = 0;
	char *p;

	memset(cmd, 0, offsetof(struct smtp_cmd, storage));
	cmd->verb = SMTP_VERB_UNKNOWN;
	cmd->arg = "";
	if (len > SMTP_MAILRCPT_LINE_MAX - 2)
		return SMTP_PARSE_SYNTAX;
	for (size_t i = 0; i < len; i++) {
		unsigned char c = (unsigned char)line[i];
		if ((c < 32 && c != '\t') || c == 127)
			return SMTP_PARSE_BAD_CHAR;
	}
	memcpy(cmd->storage, line, len);
	cmd->storage[len] = '\0';
	p = cmd->storage;
	while (vlen < len && p[vlen] != ' ')
		vlen++;
	for (size_t i = 0; i < TERN_ARRAY_LEN(verbs); i++) {
		if (strlen(verbs[i].name) == vlen &&
		    ascii_strncaseeq(p, verbs[i].name, vlen)) {
			cmd->verb = verbs[i].verb;
			break;
		}
	}
	if (cmd->verb == SMTP_VERB_UNKNOWN)
		return SMTP_PARSE_UNKNOWN;
	if (len > SMTP_CMD_LINE_MAX - 2 && cmd->verb != SMTP_VERB_MAIL &&
	    cmd->verb != SMTP_VERB_RCPT)
		return SMTP_PARSE_SYNTAX;
	p += vlen;
	if (*p == ' ')
		p++;
	/* Trailing white space is common and harmless; drop it. */
	for (size_t e = strlen(p); e > 0 && (p[e - 1] == ' ' ||
	    p[e - 1] == '\t'); e--)
		p[e - 1] = '\0';
	cmd->arg = p;

	switch (cmd->verb) {
	case SMTP_VERB_MAIL:
		return parse_mail_rcpt(cmd, "FROM:", true);
	case SMTP_VERB_RCPT:
		return parse_mail_rcpt(cmd, "TO:", false);
	case SMTP_VERB_EHLO:
	case SMTP_VERB_HELO:
	case SMTP_VERB_LHLO:
		if (*p == '\0' || strchr(p, ' ') != NULL)
			return SMTP_PARSE_SYNTAX;
		return SMTP_PARSE_OK;
	case SMTP_VERB_DATA:
	case SMTP_VERB_RSET:
	case SMTP_VERB_QUIT:
	case SMTP_VERB_STARTTLS:
		return *p == '\0' ? SMTP_PARSE_OK : SMTP_PARSE_SYNTAX;
	default:
		return SMTP_PARSE_OK;
	}
}

static bool
local_needs_quotes(const char *s)
{
	bool dot_ok = false;

	if (*s == '\0')
		return true;
	for (; *s; s++) {
		if (*s == '.') {
			if (!dot_ok)
				return true;
			dot_ok = false;
		} else if (is_atext((unsigned char)*s) ||
		    (unsigned char)*s >= 0x80)
			dot_ok = true;
		else
			return true;
	}
	return !dot_ok;
}

int
smtp_addr_format(const struct smtp_addr *a, char *dst, size_t dstsz)
{
	char local[2 * SMTP_LOCAL_MAX + 3];
	size_t n = 0;

	if (a->null)
		return str_copy(dst, dstsz, "<>");
	if (local_needs_quotes(a->local)) {
		local[n++] = '"';
		for (const char *s = a->local; *s; s++) {
			if (*s == '"' || *s == '\\')
				local[n++] = '\\';
			local[n++] = *s;
		}
		local[n++] = '"';
		local[n] = '\0';
	} else
		(void)str_copy(local, sizeof(local), a->local);
	if (a->domain[0] == '\0')
		return str_fmt(dst, dstsz, "<%s>", local);
	return str_fmt(dst, dstsz, "<%s@%s>", local, a->domain);
}

int
smtp_path_ascii(const char *path, char *dst, size_t dstsz)
{
	struct smtp_addr a;
	size_t len = strlen(path);

	if (intl_is_ascii(path, len))
		return str_copy(dst, dstsz, path);
	if (len < 2 || path[0] != '<' || path[len - 1] != '>' ||
	    smtp_parse_mailbox(path + 1, len - 2, &a) != 0 ||
	    !intl_is_ascii(a.local, strlen(a.local)) ||
	    intl_domain_ascii(a.domain, a.domain, sizeof(a.domain)) != 0)
		return -1;
	a.utf8 = false;
	return smtp_addr_format(&a, dst, dstsz);
}
