/* SPDX-License-Identifier: ISC */
/*
 * dispatch_int.h - layer 4, private to queue/dispatch*.c and
 * queue/decide.c: the slots of queued messages, the dispatcher and one
 * delivery job, shared by the phases (dispatch.c), the DECIDE phase
 * (decide.c) and the ternctl operations (dispatch_ctl.c). Everything runs
 * on the loop thread except the work_* functions, which run on a worker
 * while the job is theirs alone.
 */
#ifndef TERN_DISPATCH_INT_H
#define TERN_DISPATCH_INT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <event2/event.h>

#include "mail/envelope.h"
#include "queue/dispatch.h"
#include "queue/scheduler.h"
#include "smtp/smtp_client.h"

struct hook_msg_info;

struct slot {
	bool used;
	bool busy;               /* a job is running for it */
	bool recovered;          /* found at start-up, not yet attempted */
	bool held;               /* ternctl hold: not scheduled */
	bool forced;             /* flush/release: now, whatever next_try says */
	int64_t due;             /* when it is scheduled (stale entries skip) */
	uint32_t gen;
	char id[ENVELOPE_ID_LEN + 1];
	struct envelope *env;    /* NULL when not in memory */
	struct buf *body;
};

struct dispatch {
	struct event_base *base;
	struct runtime **current;
	struct queue *queue;
	struct deliver_maildir *dm;
	struct iopool *pool;
	struct smtp_client *client;
	struct scheduler sched;
	struct event *timer;
	struct slot *slots;
	uint32_t nslots, cap;
	uint32_t *free_list;
	uint32_t nfree;
	size_t inflight;
	bool stopped;
	struct dispatch_stats stats;
	void (*on_maildir)(void *arg, const char *maildir);
	void *on_maildir_arg;
	bool pickup_running;
	struct event *pickup_timer;
	/* messages over DISPATCH_BIG octets read whole into memory (for a
	 * remote hop): at most DISPATCH_BIG_MAX; the jobs waiting their turn */
	unsigned big_loaded;
	struct job **big_wait;
	size_t nbig_wait, big_wait_cap;
};

/* Over DISPATCH_BIG octets a message is loaded lazily: its envelope and
 * DISPATCH_HEAD_MAX octets of its start (for a report's copy of the
 * header), its Maildir copies made from the queue file by the kernel. */
#define DISPATCH_BIG (1024 * 1024)
#define DISPATCH_BIG_MAX 4
#define DISPATCH_HEAD_MAX (128 * 1024)   /* > the default header limit */

enum job_result {
	JOB_FINISHED,            /* no recipient pending: removed */
	JOB_RETRY,               /* temporary failures: try again later */
	JOB_NOT_DUE,             /* loaded from disk, next try is later */
	JOB_ERROR,               /* could not read or record: try later */
	JOB_HELD,                /* loaded from disk, on hold */
};

enum plan_kind { PLAN_NONE, PLAN_MAILDIR, PLAN_REMOTE, PLAN_TEMP };

struct plan {
	enum plan_kind kind;
	char *maildir;           /* PLAN_MAILDIR: where */
	char *mailbox;           /* "local@domain" for Delivered-To and logs */
	char *domain;
	enum smtp_dest_kind hop_kind; /* PLAN_REMOTE: where to */
	char *hop;
	enum smtp_tls_policy tls;
	char *remote_mta;        /* who answered, for the bounce */
	bool delivered;          /* set by DELIVER */
	bool dsn_passed;         /* the next hop took the DSN request */
	bool newly_failed;       /* failed in this attempt: to bounce */
};

struct job {
	struct dispatch *d;
	struct runtime *rt;      /* referenced for the job's life */
	uint64_t key;
	char id[ENVELOPE_ID_LEN + 1];
	struct envelope *env;
	struct buf *body;
	struct buf *sealed;      /* body with our ARC set, for remote hops */
	int64_t now;
	bool recovered;
	bool forced;             /* ternctl flush/release */
	bool big;                /* counted in big_loaded */
	bool lazy;               /* body is only the message's start; the
	                          * whole is in body_fd from body_off */
	int body_fd;             /* the queue file, lazy only (else -1) */
	uint64_t body_off;
	struct plan *plans;
	size_t nplans;
	bool temp;               /* some recipient failed temporarily */
	bool changed;            /* state to record */
	size_t remote_pending;   /* smtp_client deliveries out */
	enum job_result result;
};

/* One message to one next hop. */
struct remote_group {
	struct job *j;
	struct smtp_delivery d;
	size_t *idx;             /* recipient indices */
	char **paths;
	char *mail_dsn;          /* RET/ENVID for MAIL, or NULL */
	char **rcpt_dsn;         /* NOTIFY/ORCPT per recipient */
	size_t n;
};

/* Slots: a key is (index << 32 | generation); a stale key finds NULL. */
uint64_t dispatch_make_key(uint32_t slot, uint32_t gen);
struct slot *dispatch_slot_get(struct dispatch *d, uint64_t key);
void dispatch_slot_free(struct dispatch *d, uint64_t key);
/* Frees and clears *env and *body (either may be NULL). */
void dispatch_free_env_body(struct envelope **env, struct buf **body);
int64_t dispatch_now(void);
/* Starts every due job the limits allow, then arms the timer. */
void dispatch_pump(struct dispatch *d);

/* For the DECIDE phase (decide.c). */
void dispatch_fill_info(const struct job *j, size_t i,
    struct hook_msg_info *m, char *rcpt, size_t rcptsz, char *sender,
    size_t sendersz);
void dispatch_fail_rcpt(struct job *j, size_t i, int code, const char *enh,
    const char *text);
/* RECORD: removes the queue file or writes the state, then ends the job. */
void dispatch_record(struct job *j);
/* DECIDE: hooks, retry, reports; always ends in dispatch_record(). */
void dispatch_decide(struct job *j);

/* dispatch_ctl.c: the pickup timer (every 10 s). */
void dispatch_on_pickup_timer(evutil_socket_t fd, short what, void *arg);

#endif
