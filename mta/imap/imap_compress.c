/* SPDX-License-Identifier: ISC */
/*
 * imap_compress.c - layer 3 helper of the IMAP session: COMPRESS=DEFLATE
 * (RFC 4978) as a libevent filter over the connection (over TLS when
 * there is TLS): raw deflate (no zlib header, window bits -15) both ways,
 * each batch of output flushed with Z_SYNC_FLUSH so that no response
 * waits in the compressor. Inflated input is bounded per connection, so
 * that a small compressed stream cannot make a huge buffer.
 */
#include "imap/imap_compress.h"

#include <stdlib.h>
#include <string.h>

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <zlib.h>

#include "base/util.h"

struct zctx {
	z_stream in, out;
	size_t max_pending;       /* inflated, unread: at most this */
	struct bufferevent *bev;  /* the filter */
	bool failed;
};

/*
 * libevent 2.1 ignores BEV_ERROR from an input filter: the session
 * hears of it as an error event, from the loop, after this returns.
 */
static enum bufferevent_filter_result
broken(struct zctx *z)
{
	if (!z->failed) {
		z->failed = true;
		bufferevent_trigger_event(z->bev, BEV_EVENT_ERROR |
		    BEV_EVENT_READING, BEV_TRIG_DEFER_CALLBACKS);
	}
	return BEV_ERROR;
}

static void
zctx_free(void *arg)
{
	struct zctx *z = arg;

	inflateEnd(&z->in);
	deflateEnd(&z->out);
	free(z);
}

/* compressed bytes from the client -> plain input of the session */
static enum bufferevent_filter_result
z_input(struct evbuffer *src, struct evbuffer *dst, ev_ssize_t limit,
    enum bufferevent_flush_mode mode, void *arg)
{
	struct zctx *z = arg;
	size_t n = evbuffer_get_length(src);
	bool produced = false;

	(void)limit;
	(void)mode;
	if (z->failed)
		return BEV_ERROR;
	if (n == 0)
		return BEV_NEED_MORE;
	unsigned char *p = evbuffer_pullup(src, -1);
	z->in.next_in = p;
	z->in.avail_in = (uInt)n;
	while (z->in.avail_in > 0) {
		struct evbuffer_iovec v;
		if (evbuffer_reserve_space(dst, 16384, &v, 1) < 1)
			return broken(z);
		z->in.next_out = v.iov_base;
		z->in.avail_out = (uInt)v.iov_len;
		int rc = inflate(&z->in, Z_SYNC_FLUSH);
		v.iov_len -= z->in.avail_out;
		evbuffer_commit_space(dst, &v, 1);
		if (v.iov_len > 0)
			produced = true;
		if (rc == Z_STREAM_END || (rc != Z_OK && rc != Z_BUF_ERROR))
			return broken(z);   /* the client ended or broke it */
		if (rc == Z_BUF_ERROR && v.iov_len == 0)
			break;              /* needs more input */
		if (evbuffer_get_length(dst) > z->max_pending)
			return broken(z);   /* a bomb, or a client not reading */
	}
	evbuffer_drain(src, n - z->in.avail_in);
	return produced ? BEV_OK : BEV_NEED_MORE;
}

/* plain output of the session -> compressed bytes to the client */
static enum bufferevent_filter_result
z_output(struct evbuffer *src, struct evbuffer *dst, ev_ssize_t limit,
    enum bufferevent_flush_mode mode, void *arg)
{
	struct zctx *z = arg;
	size_t n = evbuffer_get_length(src);

	(void)limit;
	if (n == 0 && mode == BEV_NORMAL)
		return BEV_NEED_MORE;
	unsigned char *p = n ? evbuffer_pullup(src, -1) : NULL;
	z->out.next_in = p;
	z->out.avail_in = (uInt)n;
	do {
		struct evbuffer_iovec v;
		size_t want = n / 2 + 256;
		if (evbuffer_reserve_space(dst, (ev_ssize_t)(want < 16384 ?
		    16384 : want), &v, 1) < 1)
			return BEV_ERROR;
		z->out.next_out = v.iov_base;
		z->out.avail_out = (uInt)v.iov_len;
		int rc = deflate(&z->out, Z_SYNC_FLUSH);
		v.iov_len -= z->out.avail_out;
		evbuffer_commit_space(dst, &v, 1);
		if (rc != Z_OK && rc != Z_BUF_ERROR)
			return BEV_ERROR;
	} while (z->out.avail_out == 0);
	evbuffer_drain(src, n);
	return BEV_OK;
}

struct bufferevent *
imap_compress_wrap(struct bufferevent *under, size_t max_pending)
{
	struct zctx *z = xcalloc(1, sizeof(*z));

	z->max_pending = max_pending;
	if (inflateInit2(&z->in, -15) != Z_OK) {
		free(z);
		return NULL;
	}
	if (deflateInit2(&z->out, Z_DEFAULT_COMPRESSION, Z_DEFLATED, -15, 8,
	    Z_DEFAULT_STRATEGY) != Z_OK) {
		inflateEnd(&z->in);
		free(z);
		return NULL;
	}
	struct bufferevent *b = bufferevent_filter_new(under, z_input, z_output,
	    BEV_OPT_CLOSE_ON_FREE, zctx_free, z);
	if (b == NULL)
		zctx_free(z);
	else
		z->bev = b;
	return b;
}
