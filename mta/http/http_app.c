/* SPDX-License-Identifier: ISC */
/*
 * http_app.c - layer 3: the routes of the HTTP listeners (http_app.h).
 *
 *   GET  /.well-known/jmap               the JMAP session (RFC 8620 2)
 *   POST /jmap/api/                      the API (RFC 8620 3)
 *   GET  /jmap/download/{acc}/{blob}/{name}?accept=   a blob (6.2)
 *   GET  /jmap/eventsource/?types=&closeafter=&ping=  push (7.3)
 *   GET  /                               what this server is
 *
 * Every request but "/" authenticates with HTTP Basic (RFC 7617) against
 * the users table, over TLS or from a loopback client; the check runs
 * crypt(3) on the I/O pool (auth.c, whose cache makes the next request
 * of the same user cheap); failures count against the client address
 * as on SMTP and IMAP. Answers carry nosniff, no-referrer and no-store.
 */
#include "http/http_app.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <sys/stat.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>

#include <event2/event.h>
#include <jansson.h>

#include "base/auth.h"
#include "base/iopool.h"
#include "base/log.h"
#include "base/metrics.h"
#include "base/sasl.h"
#include "base/util.h"
#include "http/jmap_account.h"
#include "http/jmap_api.h"
#include "store/blobs.h"
#include "http/jmap_body.h"
#include "mail/maildir.h"
#include "mail/mime.h"
#include "runtime.h"
#include "store/mailbox.h"

#define API_BODY_MAX 10000000     /* maxSizeRequest */
#define DOWNLOAD_MAX (50u << 20)

static const char common_headers[] =
    "X-Content-Type-Options: nosniff\r\n"
    "Referrer-Policy: no-referrer\r\n"
    "Cache-Control: no-store\r\n";

struct push;

/* A webmail login: the cookie's token, the CSRF token, who. */
#define SESS_MAX 10000
#define SESS_IDLE (12 * 3600)     /* seconds without a request */
struct websess {
	char token[65];
	char csrf[33];
	char user[SASL_FIELD_MAX];
	time_t last;
};

/* The webmail's files, read once (share/tern/webmail, else the source). */
#define WEBFILES 4
struct webfile {
	const char *path;         /* the URL path */
	const char *name;         /* the file */
	const char *type;
	struct buf data;
	bool ok;
};
static const struct {
	const char *path, *name, *type;
} webfiles[WEBFILES] = {
	{ "/", "index.html", "text/html; charset=utf-8" },
	{ "/webmail/app.js", "app.js", "text/javascript; charset=utf-8" },
	{ "/webmail/app.css", "app.css", "text/css; charset=utf-8" },
	{ "/webmail/icon.svg", "icon.svg", "image/svg+xml" },
};
/* The app's own policy: its scripts and styles only, no inline code. */
static const char app_csp[] =
    "Content-Security-Policy: default-src 'none'; script-src 'self'; "
    "style-src 'self'; img-src 'self' data:; connect-src 'self'; "
    "frame-src 'self'; form-action 'self'; base-uri 'none'; "
    "frame-ancestors 'none'\r\n";

struct http_app {
	struct event_base *base;
	struct runtime **current;
	struct store *store;
	struct iopool *pool;
	struct queue *queue;
	size_t streams;
	struct websess *sess;     /* the webmail's cookie sessions */
	size_t nsess;
	struct webfile files[WEBFILES];
	bool files_loaded;
};

enum route { R_SESSION, R_API, R_DOWNLOAD, R_UPLOAD, R_EVENTSOURCE,
	R_LOGIN, R_WHOAMI, R_LOGOUT };

/* One request on its way through authentication to its route. */
struct hreq {
	struct http_app *app;
	struct http_conn *c;
	const struct http_request *req;
	const struct buf *body;
	struct runtime *rt;
	enum route route;
	char user[SASL_FIELD_MAX];
	char root[4096];
	struct auth_check *auth;
	struct jacct *acct;
	struct jmap_env env;
	struct websess *ws;       /* logged in by the webmail's cookie */
};

/* Reads the webmail's files once, at start (small; the loop is not yet
 * serving). */
static void
load_webfiles(struct http_app *app)
{
	char dir[4096], path[4096 + 64];
	struct stat st;

	(void)snprintf(dir, sizeof(dir), "%s/webmail", PKGDATADIR);
	(void)snprintf(path, sizeof(path), "%s/index.html", dir);
	if (stat(path, &st) != 0)
		(void)snprintf(dir, sizeof(dir), "%s", TERN_SRC_WEBMAIL);
	for (size_t i = 0; i < WEBFILES; i++) {
		struct webfile *f = &app->files[i];
		f->path = webfiles[i].path;
		f->name = webfiles[i].name;
		f->type = webfiles[i].type;
		buf_init(&f->data);
		(void)snprintf(path, sizeof(path), "%s/%s", dir, f->name);
		FILE *fp = fopen(path, "rb");
		if (fp == NULL)
			continue;
		char chunk[8192];
		size_t n;
		while ((n = fread(chunk, 1, sizeof(chunk), fp)) > 0 &&
		    f->data.len < (4u << 20))
			buf_append(&f->data, chunk, n);
		f->ok = !ferror(fp);
		(void)fclose(fp);
	}
	if (!app->files[0].ok)
		log_warnx("webmail: no %s/index.html: / serves a note instead",
		    dir);
}

struct http_app *
http_app_new(struct event_base *base, struct runtime **current,
    struct store *store, struct iopool *pool, struct queue *queue)
{
	struct http_app *app = xcalloc(1, sizeof(*app));

	app->base = base;
	app->current = current;
	app->store = store;
	app->pool = pool;
	app->queue = queue;
	load_webfiles(app);
	return app;
}

void
http_app_free(struct http_app *app)
{
	for (size_t i = 0; i < WEBFILES; i++)
		buf_clear(&app->files[i].data);
	if (app->sess)
		explicit_bzero(app->sess, app->nsess * sizeof(*app->sess));
	free(app->sess);
	free(app);
}

size_t
http_app_streams(const struct http_app *app)
{
	return app->streams;
}

uint64_t
http_app_body_limit(void *arg, const struct http_request *req)
{
	(void)arg;
	if (strcmp(req->method, "POST") == 0 &&
	    (strcmp(req->path, "/jmap/api/") == 0 ||
	    strcmp(req->path, "/jmap/api") == 0))
		return API_BODY_MAX;
	if (strcmp(req->method, "POST") == 0 &&
	    strcmp(req->path, "/webmail/login") == 0)
		return 4096;
	/* an upload's size only for a client that says who it is (the
	 * check itself comes once the body is in) */
	if (strcmp(req->method, "POST") == 0 &&
	    strncmp(req->path, "/jmap/upload/", 13) == 0 &&
	    (http_field(req, "Authorization") || http_field(req, "Cookie")))
		return JMAP_MAX_UPLOAD;
	return 0;
}

/* An upload past 64 KiB goes to an unnamed file in the data directory
 * (nothing is left behind if ternd dies), on the I/O pool. */
int
http_app_spool_open(void *arg, const struct http_request *req)
{
	struct http_app *app = arg;
	const struct config *cfg = (*app->current)->cfg;

	if (strncmp(req->path, "/jmap/upload/", 13) != 0)
		return -1;
	return blob_spool_file(cfg->data_dir);
}


static void
hreq_free(struct hreq *h)
{
	if (h->auth)
		auth_check_detach(h->auth);
	jacct_close(h->acct);
	runtime_unref(h->rt);
	free(h);
}

static void
respond_text(struct http_conn *c, int code, const char *headers,
    const char *text)
{
	char hdr[512];

	(void)snprintf(hdr, sizeof(hdr), "%s%s", common_headers,
	    headers ? headers : "");
	http_respond(c, code, "text/plain; charset=utf-8", hdr, text,
	    strlen(text));
}

static void
respond_json(struct http_conn *c, int code, const char *ctype,
    const char *json, size_t len)
{
	http_respond(c, code, ctype, common_headers, json, len);
}

/* --- the session resource (RFC 8620 2) ----------------------------------- */

/* http_public_url, else scheme://host:port of the listener reached */
static void
base_url(const struct config *cfg, struct http_conn *c, char *out,
    size_t outsz)
{
	const struct sockaddr *sa = http_conn_local(c);

	if (cfg->http_public_url) {
		(void)str_copy(out, outsz, cfg->http_public_url);
		return;
	}
	char ip[64] = "127.0.0.1";
	unsigned port = 0;

	if (sa->sa_family == AF_INET) {
		const struct sockaddr_in *s4 = (const void *)sa;
		inet_ntop(AF_INET, &s4->sin_addr, ip, sizeof(ip));
		port = ntohs(s4->sin_port);
		(void)snprintf(out, outsz, "%s://%s:%u", http_conn_tls(c) ?
		    "https" : "http", ip, port);
	} else if (sa->sa_family == AF_INET6) {
		const struct sockaddr_in6 *s6 = (const void *)sa;
		inet_ntop(AF_INET6, &s6->sin6_addr, ip, sizeof(ip));
		port = ntohs(s6->sin6_port);
		(void)snprintf(out, outsz, "%s://[%s]:%u", http_conn_tls(c) ?
		    "https" : "http", ip, port);
	} else
		(void)snprintf(out, outsz, "http://127.0.0.1");
}

static void
session(struct hreq *h)
{
	char base[128], acc[20], url[512];
	json_t *s, *accounts;

	base_url(h->rt->cfg, h->c, base, sizeof(base));
	jmap_account_id(h->user, acc);
	accounts = json_object();
	json_object_set_new(accounts, acc, json_pack("{s:s,s:b,s:b,s:o}",
	    "name", h->user, "isPersonal", 1, "isReadOnly", 0,
	    "accountCapabilities", jmap_api_account_capabilities()));
	s = json_pack("{s:o,s:o,s:{s:s,s:s},s:s}", "capabilities",
	    jmap_api_capabilities(), "accounts", accounts,
	    "primaryAccounts", "urn:ietf:params:jmap:mail", acc,
	    "urn:ietf:params:jmap:submission", acc, "username", h->user);
	(void)snprintf(url, sizeof(url), "%s/jmap/api/", base);
	json_object_set_new(s, "apiUrl", json_string(url));
	(void)snprintf(url, sizeof(url), "%s/jmap/download/{accountId}/"
	    "{blobId}/{name}?accept={type}", base);
	json_object_set_new(s, "downloadUrl", json_string(url));
	(void)snprintf(url, sizeof(url), "%s/jmap/upload/{accountId}/", base);
	json_object_set_new(s, "uploadUrl", json_string(url));
	(void)snprintf(url, sizeof(url), "%s/jmap/eventsource/?types={types}"
	    "&closeafter={closeafter}&ping={ping}", base);
	json_object_set_new(s, "eventSourceUrl", json_string(url));
	json_object_set_new(s, "state", json_string("s1"));
	char *text = json_dumps(s, JSON_COMPACT);
	json_decref(s);
	respond_json(h->c, 200, "application/json", text, strlen(text));
	free(text);
	hreq_free(h);
}

/* --- the API ------------------------------------------------------------- */

static void
api_done(void *arg, int status, const char *json, size_t len)
{
	struct hreq *h = arg;

	respond_json(h->c, status, status == 200 ? "application/json" :
	    "application/problem+json", json, len);
	hreq_free(h);
}

static void
api(struct hreq *h)
{
	h->env.queue = h->app->queue;
	h->env.rt = h->rt;
	h->env.client_ip = http_conn_ip(h->c);
	h->env.tls = http_conn_tls(h->c);
	jmap_api_run(h->acct, &h->env, h->body->data ? h->body->data : "",
	    h->body->len, api_done, h);
}

/* --- query strings ------------------------------------------------------- */

/* The value of name in an application/x-www-form-urlencoded query. */
static bool
query_param(const char *q, const char *name, char *out, size_t outsz)
{
	size_t nl = strlen(name);

	while (*q) {
		const char *amp = strchr(q, '&');
		size_t len = amp ? (size_t)(amp - q) : strlen(q);
		if (len > nl && q[nl] == '=' && strncmp(q, name, nl) == 0) {
			char raw[1024];
			if (len - nl - 1 >= sizeof(raw))
				return false;
			memcpy(raw, q + nl + 1, len - nl - 1);
			raw[len - nl - 1] = '\0';
			for (char *p = raw; *p; p++)
				if (*p == '+')
					*p = ' ';
			return http_path_decode(raw, out, outsz) == 0;
		}
		q += len;
		if (*q == '&')
			q++;
	}
	return false;
}

/* --- downloads (RFC 8620 6.2) -------------------------------------------- */

struct dl {
	struct hreq *h;
	uint32_t uid;
	char type[128];
	char name[256];
	char blob[JMAP_BLOB_LEN]; /* the blobId asked for */
	char part[JMAP_PART_LEN]; /* its part, or "": the whole message */
	bool view;                /* the webmail shows a text part: UTF-8 */
	bool remote;              /* ... with remote images allowed */
	struct buf data;
	int rc;
};

static bool
dl_work(struct mbox *mb, void *arg)
{
	struct dl *d = arg;
	ssize_t i = mbox_find_uid(mb, d->uid);
	struct tern_err err;
	struct buf lf;
	char type[130];

	d->rc = -1;
	if (i < 0)
		return false;
	buf_init(&lf);
	memset(&err, 0, sizeof(err));
	if (mbox_read(mb, (size_t)i, &lf, DOWNLOAD_MAX, &err) == 0) {
		if (d->part[0] == '\0') {
			mime_append_crlf(&d->data, lf.data ? lf.data : "",
			    lf.len);
			d->rc = 0;
		} else if (d->view)
			d->rc = jmap_part_text(lf.data ? lf.data : "", lf.len,
			    d->part, &d->data);
		else
			d->rc = jmap_part_data(lf.data ? lf.data : "", lf.len,
			    d->part, &d->data, type, sizeof(type));
	}
	buf_clear(&lf);
	return false;
}

static void
dl_done(void *arg)
{
	struct dl *d = arg;
	struct hreq *h = d->h;
	char hdr[1024];

	if (d->rc != 0)
		respond_text(h->c, 404, NULL, "no such blob\n");
	else if (d->view) {
		/* a mail's HTML, shown in the webmail's sandboxed frame:
		 * no script, nothing from elsewhere unless asked */
		(void)snprintf(hdr, sizeof(hdr), "%sContent-Disposition: "
		    "inline\r\nContent-Security-Policy: sandbox; default-src "
		    "'none'; style-src 'unsafe-inline'; img-src data:%s; "
		    "font-src data:\r\n", common_headers, d->remote ?
		    " https: http:" : "");
		http_respond(h->c, 200, strcmp(d->type, "text/html") == 0 ?
		    "text/html; charset=utf-8" : "text/plain; charset=utf-8",
		    hdr, d->data.data, d->data.len);
	} else {
		(void)snprintf(hdr, sizeof(hdr), "%sContent-Disposition: "
		    "attachment; filename=\"%s\"\r\nContent-Security-Policy: "
		    "sandbox; default-src 'none'\r\n", common_headers, d->name);
		http_respond(h->c, 200, d->type, hdr, d->data.data,
		    d->data.len);
	}
	buf_clear(&d->data);
	free(d);
	hreq_free(h);
}

/* A media type we pass on: type/subtype of token characters. */
static bool
safe_type(const char *t)
{
	const char *slash = strchr(t, '/');

	if (slash == NULL || slash == t || slash[1] == '\0' ||
	    strchr(slash + 1, '/'))
		return false;
	for (; *t; t++)
		if (!((*t >= 'a' && *t <= 'z') || (*t >= 'A' && *t <= 'Z') ||
		    (*t >= '0' && *t <= '9') || strchr("/.+-_", *t)))
			return false;
	return true;
}

static void
download_refreshed(void *arg)
{
	struct dl *d = arg;
	struct hreq *h = d->h;
	size_t n = 0;
	char email[JMAP_BLOB_LEN];
	const struct jloc *l = NULL;

	if (d->blob[0] == 'm')
		l = jacct_find(h->acct, d->blob + 1, &n);
	else if (jmap_part_blob_parse(d->blob, email, sizeof(email), d->part))
		l = jacct_find(h->acct, email, &n);

	if (l == NULL) {
		free(d);
		respond_text(h->c, 404, NULL, "no such blob\n");
		hreq_free(h);
		return;
	}
	d->uid = jacct_box(h->acct, l[0].box)->s.m[l[0].idx].uid;
	jacct_box_run(h->acct, l[0].box, dl_work, dl_done, d);
}

/* An uploaded blob: read on the pool, then as for the others. */
static void
dl_upload_work(void *arg)
{
	struct dl *d = arg;

	d->rc = blob_read(d->h->root, d->blob, &d->data, DOWNLOAD_MAX);
}

/* /jmap/download/{accountId}/{blobId}/{name}?accept={type} */
static void
download(struct hreq *h)
{
	struct dl *d = xcalloc(1, sizeof(*d));
	char acc[20];
	const char *p = h->req->path + strlen("/jmap/download/");
	const char *s1 = strchr(p, '/'), *s2 = s1 ? strchr(s1 + 1, '/') : NULL;

	d->h = h;
	buf_init(&d->data);
	jmap_account_id(h->user, acc);
	if (s1 == NULL || s2 == NULL || (size_t)(s1 - p) != strlen(acc) ||
	    strncmp(p, acc, strlen(acc)) != 0 ||
	    (size_t)(s2 - s1 - 1) >= sizeof(d->blob)) {
		free(d);
		respond_text(h->c, 404, NULL, "no such account or blob\n");
		hreq_free(h);
		return;
	}
	memcpy(d->blob, s1 + 1, (size_t)(s2 - s1 - 1));
	if (!query_param(h->req->query, "accept", d->type, sizeof(d->type)) ||
	    !safe_type(d->type))
		(void)str_copy(d->type, sizeof(d->type),
		    "application/octet-stream");
	char flag[8];
	d->view = query_param(h->req->query, "view", flag, sizeof(flag)) &&
	    strcmp(flag, "1") == 0;
	d->remote = query_param(h->req->query, "remote", flag, sizeof(flag)) &&
	    strcmp(flag, "1") == 0;
	/* the name, %-decoded, with nothing that could end the quoted
	 * filename parameter */
	if (http_path_decode(s2 + 1, d->name, sizeof(d->name)) != 0)
		d->name[0] = '\0';
	for (char *c = d->name; *c; c++)
		if (*c == '"' || *c == '\\' || (unsigned char)*c < ' ' ||
		    *c == 0x7f)
			*c = '_';
	if (d->name[0] == '\0')
		(void)str_copy(d->name, sizeof(d->name), "blob");
	if (d->blob[0] == 'U') {
		d->view = false;     /* shown only as what it is: a download */
		iopool_submit(h->app->pool, dl_upload_work, dl_done, d);
		return;
	}
	jacct_refresh(h->acct, download_refreshed, d);
}

/* --- uploads (RFC 8620 6.1) ---------------------------------------------- */

struct ul {
	struct hreq *h;
	int fd;                   /* the spooled body, or -1 */
	uint64_t fdsize;
	char id[BLOB_ID_LEN];
	struct tern_err err;
	int rc;
};

static void
ul_work(void *arg)
{
	struct ul *u = arg;
	const struct buf *b = u->h->body;

	u->rc = blob_store(u->h->root, b->data ? b->data : "", b->len, u->fd,
	    u->fdsize, u->id, &u->err);
}

static void
ul_done(void *arg)
{
	struct ul *u = arg;
	struct hreq *h = u->h;
	char acc[20], type[256];
	const char *ct = http_field(h->req, "Content-Type");

	if (u->rc != 0) {
		log_warnx("http %s: upload: %s", http_conn_id(h->c), u->err.text);
		respond_text(h->c, 500, NULL, "the upload could not be kept\n");
	} else {
		/* the type as given, parameters and all, if it is printable */
		(void)str_copy(type, sizeof(type), ct && *ct ? ct :
		    "application/octet-stream");
		for (char *c = type; *c; c++)
			if ((unsigned char)*c < ' ' || *c == 0x7f)
				*c = ' ';
		jmap_account_id(h->user, acc);
		uint64_t size = u->fd >= 0 ? u->fdsize : h->body->len;
		json_t *o = json_pack("{s:s,s:s,s:s,s:I}", "accountId", acc,
		    "blobId", u->id, "type", type, "size", (json_int_t)size);
		char *text = json_dumps(o, JSON_COMPACT);
		http_respond(h->c, 201, "application/json", common_headers, text,
		    strlen(text));
		free(text);
		json_decref(o);
	}
	free(u);
	hreq_free(h);
}

/* POST /jmap/upload/{accountId}/ */
static void
upload(struct hreq *h)
{
	char acc[20];
	const char *p = h->req->path + strlen("/jmap/upload/");
	size_t al;

	jmap_account_id(h->user, acc);
	al = strlen(acc);
	if (strncmp(p, acc, al) != 0 || (p[al] != '\0' && strcmp(p + al, "/"))) {
		respond_text(h->c, 404, NULL, "no such account\n");
		hreq_free(h);
		return;
	}
	struct ul *u = xcalloc(1, sizeof(*u));
	u->h = h;
	u->fd = http_conn_body_fd(h->c, &u->fdsize);
	iopool_submit(h->app->pool, ul_work, ul_done, u);
}

/* --- push: EventSource (RFC 8620 7.3) ------------------------------------ */

enum { T_EMAIL = 1, T_MAILBOX = 2, T_THREAD = 4 };

struct push {
	struct http_app *app;
	struct http_conn *c;
	struct jacct *acct;
	struct jacct_watch w;
	struct event *ping;
	unsigned ping_secs;
	unsigned types;
	bool closeafter;
	bool refreshing, again, dead;
	char account_id[20];
	char *email, *mailbox;    /* the states last sent */
};

static void
push_free(struct push *p)
{
	jacct_unwatch(p->acct, &p->w);
	jacct_close(p->acct);
	event_free(p->ping);
	p->app->streams--;
	free(p->email);
	free(p->mailbox);
	free(p);
}

static void
push_gone(void *arg)
{
	struct push *p = arg;

	p->dead = true;
	p->c = NULL;
	if (!p->refreshing)
		push_free(p);
}

static void push_refreshed(void *arg);

static void
push_changed(void *arg)
{
	struct push *p = arg;

	if (p->refreshing) {
		p->again = true;
		return;
	}
	p->refreshing = true;
	jacct_refresh(p->acct, push_refreshed, p);
}

static void
push_refreshed(void *arg)
{
	struct push *p = arg;
	char *email, *mailbox;
	json_t *ch;

	p->refreshing = false;
	if (p->dead) {
		push_free(p);
		return;
	}
	email = jacct_email_state(p->acct);
	mailbox = jacct_mailbox_state(p->acct);
	ch = json_object();
	if ((p->types & (T_EMAIL | T_THREAD)) &&
	    (p->email == NULL || strcmp(email, p->email) != 0)) {
		if (p->types & T_EMAIL)
			json_object_set_new(ch, "Email", json_string(email));
		if (p->types & T_THREAD) {
			char *t = jacct_thread_state(p->acct);
			json_object_set_new(ch, "Thread", json_string(t));
			free(t);
		}
	}
	if ((p->types & T_MAILBOX) &&
	    (p->mailbox == NULL || strcmp(mailbox, p->mailbox) != 0))
		json_object_set_new(ch, "Mailbox", json_string(mailbox));
	free(p->email);
	free(p->mailbox);
	p->email = email;
	p->mailbox = mailbox;
	if (json_object_size(ch) > 0) {
		json_t *ev = json_pack("{s:s,s:{s:o}}", "@type", "StateChange",
		    "changed", p->account_id, ch);
		char *text = json_dumps(ev, JSON_COMPACT);
		struct buf b;
		buf_init(&b);
		buf_printf(&b, "event: state\ndata: %s\n\n", text);
		http_stream_write(p->c, b.data, b.len);
		buf_clear(&b);
		free(text);
		json_decref(ev);
		if (p->closeafter) {
			struct http_conn *c = p->c;
			p->c = NULL;
			push_free(p);
			http_stream_end(c);
			return;
		}
	} else
		json_decref(ch);
	if (p->again) {
		p->again = false;
		push_changed(p);
	}
}

static void
on_ping(evutil_socket_t fd, short what, void *arg)
{
	struct push *p = arg;
	char line[96];
	int n = snprintf(line, sizeof(line), "event: ping\ndata: "
	    "{\"@type\":\"Ping\",\"interval\":%u}\n\n", p->ping_secs);

	if (!p->dead && n > 0)
		http_stream_write(p->c, line, (size_t)n);
}

static void
eventsource(struct hreq *h)
{
	struct push *p = xcalloc(1, sizeof(*p));
	char v[256];

	p->app = h->app;
	p->c = h->c;
	p->acct = jacct_ref(h->acct);
	p->types = T_EMAIL | T_MAILBOX | T_THREAD;
	jmap_account_id(h->user, p->account_id);
	if (query_param(h->req->query, "types", v, sizeof(v)) &&
	    strcmp(v, "*") != 0) {
		p->types = 0;
		char *save = NULL;
		for (char *t = strtok_r(v, ",", &save); t;
		    t = strtok_r(NULL, ",", &save))
			p->types |= strcmp(t, "Email") == 0 ? T_EMAIL :
			    strcmp(t, "Mailbox") == 0 ? T_MAILBOX :
			    strcmp(t, "Thread") == 0 ? T_THREAD : 0;
	}
	p->closeafter = query_param(h->req->query, "closeafter", v,
	    sizeof(v)) && strcmp(v, "state") == 0;
	if (query_param(h->req->query, "ping", v, sizeof(v))) {
		uint64_t s;
		if (parse_u64(v, strlen(v), &s) == 0)
			p->ping_secs = s == 0 ? 0 : s < 5 ? 5 : s > 3600 ?
			    3600 : (unsigned)s;
	}
	p->ping = event_new(h->app->base, -1, EV_PERSIST, on_ping, p);
	if (p->ping_secs) {
		struct timeval tv = { (time_t)p->ping_secs, 0 };
		evtimer_add(p->ping, &tv);
	}
	p->w.changed = push_changed;
	p->w.arg = p;
	jacct_watch(p->acct, &p->w);
	h->app->streams++;
	p->refreshing = true;     /* push_gone may come at once: it waits */
	http_stream_start(h->c, "text/event-stream", common_headers,
	    push_gone, p);
	hreq_free(h);
	if (p->dead) {
		push_free(p);
		return;
	}
	/* the states now, as the first event: a client knows from it
	 * that the stream is live (and closeafter=state ends here) */
	jacct_refresh(p->acct, push_refreshed, p);
}

/* --- authentication and routing ------------------------------------------ */

static void session_user_ok(struct hreq *h);
static void login(struct hreq *h);
static void logout(struct hreq *h);

static void
route(struct hreq *h)
{
	switch (h->route) {
	case R_SESSION: session(h); break;
	case R_API: api(h); break;
	case R_DOWNLOAD: download(h); break;
	case R_UPLOAD: upload(h); break;
	case R_EVENTSOURCE: eventsource(h); break;
	case R_LOGIN: login(h); break;
	case R_LOGOUT: logout(h); break;
	case R_WHOAMI:            /* answered in authenticate() */
		respond_text(h->c, 401, NULL, "not logged in\n");
		hreq_free(h);
		break;
	}
}

static void
unauthorized(struct hreq *h, const char *why)
{
	respond_text(h->c, 401, "WWW-Authenticate: Basic realm=\"Tern\", "
	    "charset=\"UTF-8\", Bearer realm=\"Tern\"\r\n", why);
	hreq_free(h);
}

static void
on_auth_checked(void *arg, bool ok)
{
	struct hreq *h = arg;
	const struct config *cfg = h->rt->cfg;

	h->auth = NULL;
	if (!ok || maildir_user_root(cfg->mail_dir, cfg->domains[0], h->user,
	    h->root, sizeof(h->root)) != 0) {
		auth_ip_failed(http_conn_ip(h->c), (long)time(NULL), "http");
		log_info("http %s: login failed user=%s client=%s",
		    http_conn_id(h->c), h->user, http_conn_ip(h->c));
		unauthorized(h, "authentication failed\n");
		return;
	}
	h->acct = jacct_open(h->app->base, h->app->store, h->app->pool,
	    h->user, h->root);
	route(h);
}

/* An app password (ternctl token): its user, with the failure limit of
 * the passwords. */
static void
bearer(struct hreq *h, const char *token)
{
	const char *who;

	if (auth_ip_blocked(http_conn_ip(h->c), (long)time(NULL))) {
		respond_text(h->c, 429, "Retry-After: 60\r\n",
		    "too many failed logins; try later\n");
		hreq_free(h);
		return;
	}
	while (*token == ' ')
		token++;
	if ((who = auth_token_user(h->rt->users, token)) == NULL ||
	    str_copy(h->user, sizeof(h->user), who) != 0) {
		auth_ip_failed(http_conn_ip(h->c), (long)time(NULL), "http");
		log_info("http %s: bearer token refused client=%s",
		    http_conn_id(h->c), http_conn_ip(h->c));
		unauthorized(h, "unknown token\n");
		return;
	}
	on_auth_checked(h, true);
}

/* A cookie session's user: its Maildir, then the route. */
static void
session_user_ok(struct hreq *h)
{
	const struct config *cfg = h->rt->cfg;

	if (maildir_user_root(cfg->mail_dir, cfg->domains[0], h->user,
	    h->root, sizeof(h->root)) != 0) {
		unauthorized(h, "no such user\n");
		return;
	}
	h->acct = jacct_open(h->app->base, h->app->store, h->app->pool,
	    h->user, h->root);
	route(h);
}

/* --- the webmail's cookie sessions --------------------------------------- */

static bool
ct_equal(const char *a, const char *b, size_t n)
{
	unsigned char d = 0;

	for (size_t i = 0; i < n; i++)
		d |= (unsigned char)(a[i] ^ b[i]);
	return d == 0;
}

static void
random_hex(char *out, size_t bytes)
{
	unsigned char r[32];

	TERN_ASSERT(bytes <= sizeof(r));
	if (getrandom(r, bytes, 0) != (ssize_t)bytes)
		abort();          /* no randomness: no tokens */
	for (size_t i = 0; i < bytes; i++)
		(void)snprintf(out + 2 * i, 3, "%02x", r[i]);
	explicit_bzero(r, sizeof(r));
}

static void
sess_expire(struct http_app *app, time_t now)
{
	for (size_t i = 0; i < app->nsess;)
		if (now - app->sess[i].last > SESS_IDLE) {
			app->sess[i] = app->sess[--app->nsess];
			explicit_bzero(&app->sess[app->nsess],
			    sizeof(app->sess[0]));
		} else
			i++;
}

/* The session of the request's tern_session cookie, or NULL. */
static struct websess *
sess_find(struct http_app *app, const struct http_request *req)
{
	const char *c = http_field(req, "Cookie");
	time_t now = time(NULL);

	sess_expire(app, now);
	while (c && *c) {
		while (*c == ' ' || *c == ';')
			c++;
		if (strncmp(c, "tern_session=", 13) == 0) {
			const char *v = c + 13;
			size_t n = strcspn(v, "; ");
			if (n != 64)
				return NULL;
			for (size_t i = 0; i < app->nsess; i++)
				if (ct_equal(app->sess[i].token, v, 64)) {
					app->sess[i].last = now;
					return &app->sess[i];
				}
			return NULL;
		}
		c = strchr(c, ';');
	}
	return NULL;
}

static struct websess *
sess_new(struct http_app *app, const char *user)
{
	if (app->nsess == SESS_MAX)
		return NULL;
	if (app->sess == NULL)
		app->sess = xcalloc(SESS_MAX, sizeof(*app->sess));
	struct websess *w = &app->sess[app->nsess++];
	random_hex(w->token, 32);
	random_hex(w->csrf, 16);
	(void)str_copy(w->user, sizeof(w->user), user);
	w->last = time(NULL);
	return w;
}

static void
sess_answer(struct hreq *h, struct websess *w, const char *cookie)
{
	char hdr[1024];
	json_t *o = json_pack("{s:s,s:s}", "username", w->user, "csrf",
	    w->csrf);
	char *text = json_dumps(o, JSON_COMPACT);

	(void)snprintf(hdr, sizeof(hdr), "%s%s", common_headers,
	    cookie ? cookie : "");
	http_respond(h->c, 200, "application/json", hdr, text, strlen(text));
	free(text);
	json_decref(o);
}

/* POST /webmail/login {"username","password"}: checked, then a cookie. */
static void
login_checked(void *arg, bool ok)
{
	struct hreq *h = arg;
	char cookie[256];

	h->auth = NULL;
	if (!ok) {
		auth_ip_failed(http_conn_ip(h->c), (long)time(NULL), "http");
		log_info("http %s: webmail login failed user=%s client=%s",
		    http_conn_id(h->c), h->user, http_conn_ip(h->c));
		static const char e[] =
		    "{\"error\":\"wrong user name or password\"}";
		respond_json(h->c, 401, "application/json", e, sizeof(e) - 1);
		hreq_free(h);
		return;
	}
	struct websess *w = sess_new(h->app, h->user);
	if (w == NULL) {
		respond_text(h->c, 503, NULL, "too many sessions\n");
		hreq_free(h);
		return;
	}
	log_info("http %s: webmail login user=%s client=%s", http_conn_id(h->c),
	    h->user, http_conn_ip(h->c));
	(void)snprintf(cookie, sizeof(cookie), "Set-Cookie: tern_session=%s; "
	    "Path=/; HttpOnly; SameSite=Strict%s\r\n", w->token,
	    http_conn_tls(h->c) ? "; Secure" : "");
	sess_answer(h, w, cookie);
	hreq_free(h);
}

static void
login(struct hreq *h)
{
	json_error_t e;
	json_t *o = json_loadb(h->body->data ? h->body->data : "",
	    h->body->len, JSON_REJECT_DUPLICATES, &e);
	const char *u = json_string_value(json_object_get(o, "username"));
	const char *pw = json_string_value(json_object_get(o, "password"));

	if (u == NULL || pw == NULL || *u == '\0' ||
	    str_copy(h->user, sizeof(h->user), u) != 0) {
		json_decref(o);
		respond_text(h->c, 400, NULL, "username and password, as "
		    "JSON\n");
		hreq_free(h);
		return;
	}
	h->auth = auth_check(h->rt->users, h->app->pool, h->user, pw,
	    login_checked, h);
	json_decref(o);
}

static void
logout(struct hreq *h)
{
	struct http_app *app = h->app;

	if (h->ws) {
		size_t i = (size_t)(h->ws - app->sess);
		app->sess[i] = app->sess[--app->nsess];
		explicit_bzero(&app->sess[app->nsess], sizeof(app->sess[0]));
	}
	respond_text(h->c, 200, "Set-Cookie: tern_session=; Path=/; "
	    "HttpOnly; SameSite=Strict; Max-Age=0\r\n", "logged out\n");
	hreq_free(h);
}

static void
serve_file(struct http_app *app, struct http_conn *c, const char *path)
{
	char hdr[1024];

	for (size_t i = 0; i < WEBFILES; i++) {
		const struct webfile *f = &app->files[i];
		if (strcmp(f->path, path) != 0)
			continue;
		if (!f->ok)
			break;
		(void)snprintf(hdr, sizeof(hdr), "X-Content-Type-Options: "
		    "nosniff\r\nReferrer-Policy: no-referrer\r\n"
		    "Cache-Control: no-cache\r\n%s", app_csp);
		http_respond(c, 200, f->type, hdr, f->data.data, f->data.len);
		return;
	}
	if (strcmp(path, "/") == 0)
		respond_text(c, 200, NULL, "Tern mail server. JMAP: "
		    "/.well-known/jmap\n");
	else
		respond_text(c, 404, NULL, "not found\n");
}

/* A client whose traffic never leaves this host. */
static bool
loopback(const char *ip)
{
	return strncmp(ip, "127.", 4) == 0 || strcmp(ip, "::1") == 0 ||
	    strncmp(ip, "::ffff:127.", 11) == 0;
}

static void
authenticate(struct hreq *h)
{
	const char *a = http_field(h->req, "Authorization");
	char dec[2 * SASL_FIELD_MAX + 2];
	size_t dlen;

	if (!http_conn_tls(h->c) && !loopback(http_conn_ip(h->c))) {
		respond_text(h->c, 403, NULL, "use https\n");
		hreq_free(h);
		return;
	}
	if (h->rt->users == NULL) {
		respond_text(h->c, 503, NULL, "no users table\n");
		hreq_free(h);
		return;
	}
	if (h->route == R_LOGIN) {
		if (auth_ip_blocked(http_conn_ip(h->c), (long)time(NULL))) {
			respond_text(h->c, 429, "Retry-After: 60\r\n",
			    "too many failed logins; try later\n");
			hreq_free(h);
			return;
		}
		login(h);
		return;
	}
	if (a == NULL && (h->ws = sess_find(h->app, h->req)) != NULL) {
		/* the webmail: its cookie, and on what changes anything its
		 * CSRF token in a header a cross-site form cannot send */
		const char *t = http_field(h->req, "X-CSRF-Token");
		if (strcmp(h->req->method, "POST") == 0 && (t == NULL ||
		    strlen(t) != 32 || !ct_equal(t, h->ws->csrf, 32))) {
			respond_text(h->c, 403, NULL, "missing or wrong "
			    "X-CSRF-Token\n");
			hreq_free(h);
			return;
		}
		(void)str_copy(h->user, sizeof(h->user), h->ws->user);
		if (h->route == R_WHOAMI) {
			sess_answer(h, h->ws, NULL);
			hreq_free(h);
			return;
		}
		if (h->route == R_LOGOUT) {
			logout(h);
			return;
		}
		h->auth = NULL;
		session_user_ok(h);
		return;
	}
	if (h->route == R_WHOAMI || h->route == R_LOGOUT) {
		static const char e[] = "{\"error\":\"not logged in\"}";
		respond_json(h->c, 401, "application/json", e, sizeof(e) - 1);
		hreq_free(h);
		return;
	}
	if (a && ascii_strncaseeq(a, "Bearer ", 7)) {
		bearer(h, a + 7);
		return;
	}
	if (a == NULL || !ascii_strncaseeq(a, "Basic ", 6)) {
		unauthorized(h, "authentication required\n");
		return;
	}
	if (auth_ip_blocked(http_conn_ip(h->c), (long)time(NULL))) {
		respond_text(h->c, 429, "Retry-After: 60\r\n",
		    "too many failed logins; try later\n");
		hreq_free(h);
		return;
	}
	a += 6;
	while (*a == ' ')
		a++;
	char *colon;
	if (sasl_b64_decode(a, strlen(a), dec, sizeof(dec), &dlen) != 0 ||
	    memchr(dec, '\0', dlen) || (colon = strchr(dec, ':')) == NULL ||
	    colon == dec || (size_t)(colon - dec) >= sizeof(h->user)) {
		unauthorized(h, "malformed credentials\n");
		return;
	}
	*colon = '\0';
	(void)str_copy(h->user, sizeof(h->user), dec);
	h->auth = auth_check(h->rt->users, h->app->pool, h->user, colon + 1,
	    on_auth_checked, h);
	explicit_bzero(dec, sizeof(dec));
}

/* --- /metrics and client autoconfiguration ------------------------------- */

/* Prometheus text, to loopback clients only (the listener may face
 * the Internet; the figures are for the operator). */
static void
metrics(struct http_conn *c)
{
	struct buf out;

	if (!loopback(http_conn_ip(c))) {
		respond_text(c, 403, NULL, "metrics are for loopback clients\n");
		return;
	}
	buf_init(&out);
	metrics_render(&out);
	http_respond(c, 200, "text/plain; version=0.0.4; charset=utf-8",
	    common_headers, out.data ? out.data : "", out.len);
	buf_clear(&out);
}

static void
xml_escaped(struct buf *out, const char *s)
{
	for (; *s; s++)
		switch (*s) {
		case '<': buf_append_str(out, "&lt;"); break;
		case '>': buf_append_str(out, "&gt;"); break;
		case '&': buf_append_str(out, "&amp;"); break;
		case '"': buf_append_str(out, "&quot;"); break;
		case '\'': buf_append_str(out, "&apos;"); break;
		default:
			if ((unsigned char)*s >= ' ')
				buf_append_char(out, *s);
		}
}

/* The port of the first listener of role, or 0. */
static unsigned
role_port(const struct config *cfg, enum listen_role role)
{
	for (size_t i = 0; i < cfg->nlisten; i++)
		if (cfg->listen[i].role == role) {
			const char *colon = strrchr(cfg->listen[i].addr, ':');
			return colon ? (unsigned)strtoul(colon + 1, NULL, 10) :
			    0;
		}
	return 0;
}

static void
server_xml(struct buf *x, const char *dir, const char *type, const char *host,
    unsigned port, const char *socket)
{
	buf_printf(x, "    <%s type=\"%s\">\n      <hostname>", dir, type);
	xml_escaped(x, host);
	buf_printf(x, "</hostname>\n      <port>%u</port>\n"
	    "      <socketType>%s</socketType>\n"
	    "      <authentication>password-cleartext</authentication>\n"
	    "      <username>%%EMAILLOCALPART%%</username>\n    </%s>\n",
	    port, socket, dir);
}

/*
 * Thunderbird's autoconfig (config-v1.1.xml): the IMAP and submission
 * listeners of this configuration, under the name the client reached
 * us by (its Host, else our hostname), and the JMAP session URL.
 */
static void
autoconfig(struct http_app *app, struct http_conn *c,
    const struct http_request *req)
{
	const struct config *cfg = (*app->current)->cfg;
	const char *hosthdr = http_field(req, "Host");
	char host[256], base[128];
	struct buf x;
	unsigned p;

	(void)str_copy(host, sizeof(host), hosthdr && *hosthdr &&
	    strlen(hosthdr) < sizeof(host) ? hosthdr : cfg->hostname);
	char *colon = strrchr(host, ':');
	if (colon && !strchr(host, ']'))
		*colon = '\0';           /* the port is ours to say */
	buf_init(&x);
	buf_append_str(&x, "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n"
	    "<clientConfig version=\"1.1\">\n  <emailProvider id=\"");
	xml_escaped(&x, cfg->domains[0]);
	buf_append_str(&x, "\">\n");
	for (size_t i = 0; i < cfg->ndomains; i++) {
		buf_append_str(&x, "    <domain>");
		xml_escaped(&x, cfg->domains[i]);
		buf_append_str(&x, "</domain>\n");
	}
	buf_append_str(&x, "    <displayName>");
	xml_escaped(&x, cfg->domains[0]);
	buf_append_str(&x, " (Tern)</displayName>\n");
	if ((p = role_port(cfg, ROLE_IMAPS)) != 0)
		server_xml(&x, "incomingServer", "imap", host, p, "SSL");
	if ((p = role_port(cfg, ROLE_IMAP)) != 0)
		server_xml(&x, "incomingServer", "imap", host, p, "STARTTLS");
	if ((p = role_port(cfg, ROLE_SUBMISSIONS)) != 0)
		server_xml(&x, "outgoingServer", "smtp", host, p, "SSL");
	if ((p = role_port(cfg, ROLE_SUBMISSION)) != 0)
		server_xml(&x, "outgoingServer", "smtp", host, p, "STARTTLS");
	base_url(cfg, c, base, sizeof(base));
	buf_append_str(&x, "    <incomingServer type=\"jmap\">\n      <url>");
	xml_escaped(&x, base);
	buf_append_str(&x, "/.well-known/jmap</url>\n"
	    "      <authentication>http-basic</authentication>\n"
	    "      <username>%EMAILLOCALPART%</username>\n"
	    "    </incomingServer>\n  </emailProvider>\n</clientConfig>\n");
	http_respond(c, 200, "application/xml; charset=utf-8", common_headers,
	    x.data, x.len);
	buf_clear(&x);
}

void
http_app_handle(void *arg, struct http_conn *c, const struct http_request *req,
    const struct buf *body)
{
	struct http_app *app = arg;
	struct hreq *h;
	const char *m = req->method, *p = req->path;
	bool get = strcmp(m, "GET") == 0 || strcmp(m, "HEAD") == 0;
	enum route r;

	if (get && (strcmp(p, "/") == 0 || strncmp(p, "/webmail/", 9) == 0) &&
	    strcmp(p, "/webmail/session") != 0) {
		serve_file(app, c, p);
		return;
	}
	if (get && strcmp(p, "/metrics") == 0) {
		metrics(c);
		return;
	}
	if (get && (strcmp(p, "/.well-known/autoconfig/mail/config-v1.1.xml")
	    == 0 || strcmp(p, "/mail/config-v1.1.xml") == 0)) {
		autoconfig(app, c, req);
		return;
	}
	if (strcmp(m, "POST") == 0 && strcmp(p, "/webmail/login") == 0)
		r = R_LOGIN;
	else if (strcmp(m, "POST") == 0 && strcmp(p, "/webmail/logout") == 0)
		r = R_LOGOUT;
	else if (get && strcmp(p, "/webmail/session") == 0)
		r = R_WHOAMI;
	else if (get && strcmp(p, "/.well-known/jmap") == 0)
		r = R_SESSION;
	else if (strcmp(m, "POST") == 0 && (strcmp(p, "/jmap/api/") == 0 ||
	    strcmp(p, "/jmap/api") == 0))
		r = R_API;
	else if (get && strncmp(p, "/jmap/download/", 15) == 0)
		r = R_DOWNLOAD;
	else if (strcmp(m, "POST") == 0 && strncmp(p, "/jmap/upload/", 13) == 0)
		r = R_UPLOAD;
	else if (get && (strcmp(p, "/jmap/eventsource/") == 0 ||
	    strcmp(p, "/jmap/eventsource") == 0))
		r = R_EVENTSOURCE;
	else if (strcmp(p, "/jmap/api/") == 0 || strcmp(p, "/jmap/api") == 0 ||
	    strcmp(p, "/.well-known/jmap") == 0) {
		respond_text(c, 405, strcmp(p, "/.well-known/jmap") == 0 ?
		    "Allow: GET, HEAD\r\n" : "Allow: POST\r\n",
		    "method not allowed\n");
		return;
	} else {
		respond_text(c, 404, NULL, "not found\n");
		return;
	}
	h = xcalloc(1, sizeof(*h));
	h->app = app;
	h->c = c;
	h->req = req;
	h->body = body;
	h->rt = runtime_ref(*app->current);
	h->route = r;
	authenticate(h);
}
