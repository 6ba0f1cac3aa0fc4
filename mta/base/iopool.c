/* SPDX-License-Identifier: ISC */
/*
 * iopool.c - layer 2. Why a pool: a durable create costs a write, an fsync
 * of the file, a rename and an fsync of the directory: milliseconds on a
 * virtual disk. One thread manages ~900 of them per second; several threads
 * in parallel let the disk merge them (ANCHORS.md: ~2,500/s from 4, more
 * from 16), and dirsync.c lets concurrent renames share one directory
 * fsync. Sessions never wait on this: they park until their completion.
 *
 * Shape: a FIFO of jobs under one mutex and condition variable; workers pop
 * and run them, then push them on a completion list. The first completion
 * after an empty list activates one libevent event (event_active() is
 * thread-safe once evthread_use_pthreads() is on); its callback drains the
 * whole list on the loop thread, so a burst costs one wake-up.
 */
#include "base/iopool.h"

#include <pthread.h>
#include <stdbool.h>
#include <stdlib.h>

#include <event2/event.h>

#include "base/util.h"

struct iopool_job {
	iopool_work_fn work;
	iopool_done_fn done;
	void *arg;
	struct iopool_job *next;
};

struct job_list {
	struct iopool_job *head, *tail;
};

struct iopool {
	pthread_mutex_t lock;
	pthread_cond_t cond;
	struct job_list todo;
	struct job_list done;
	size_t pending;          /* submitted, done function not yet run */
	bool stopping;
	int nthreads;
	pthread_t *threads;
	struct event *ev_done;
};

static void
list_push(struct job_list *l, struct iopool_job *j)
{
	j->next = NULL;
	if (l->tail)
		l->tail->next = j;
	else
		l->head = j;
	l->tail = j;
}

static struct iopool_job *
list_pop(struct job_list *l)
{
	struct iopool_job *j = l->head;

	if (j) {
		l->head = j->next;
		if (l->head == NULL)
			l->tail = NULL;
	}
	return j;
}

static void *
iopool_worker(void *arg)
{
	struct iopool *pool = arg;
	struct iopool_job *job;

	pthread_mutex_lock(&pool->lock);
	for (;;) {
		while (pool->todo.head == NULL && !pool->stopping)
			pthread_cond_wait(&pool->cond, &pool->lock);
		job = list_pop(&pool->todo);
		if (job == NULL)
			break; /* stopping and nothing left */
		pthread_mutex_unlock(&pool->lock);
		job->work(job->arg);
		pthread_mutex_lock(&pool->lock);
		bool was_empty = pool->done.head == NULL;
		list_push(&pool->done, job);
		if (was_empty)
			event_active(pool->ev_done, EV_READ, 0);
	}
	pthread_mutex_unlock(&pool->lock);
	return NULL;
}

static void
iopool_run_done(struct iopool *pool)
{
	struct job_list list;
	struct iopool_job *job;

	pthread_mutex_lock(&pool->lock);
	list = pool->done;
	pool->done.head = pool->done.tail = NULL;
	pthread_mutex_unlock(&pool->lock);
	while ((job = list_pop(&list)) != NULL) {
		if (job->done)
			job->done(job->arg);
		pool->pending--;
		free(job);
	}
}

static void
iopool_on_done(evutil_socket_t fd, short what, void *arg)
{
	iopool_run_done(arg);
}

struct iopool *
iopool_new(struct event_base *base, int nthreads)
{
	struct iopool *pool = xcalloc(1, sizeof(*pool));

	TERN_ASSERT(nthreads > 0);
	pthread_mutex_init(&pool->lock, NULL);
	pthread_cond_init(&pool->cond, NULL);
	pool->ev_done = event_new(base, -1, 0, iopool_on_done, pool);
	TERN_ASSERT(pool->ev_done != NULL);
	pool->nthreads = nthreads;
	pool->threads = xcalloc((size_t)nthreads, sizeof(*pool->threads));
	for (int i = 0; i < nthreads; i++)
		if (pthread_create(&pool->threads[i], NULL, iopool_worker,
		    pool) != 0)
			TERN_ASSERT(!"pthread_create failed");
	return pool;
}

void
iopool_submit(struct iopool *pool, iopool_work_fn work, iopool_done_fn done,
    void *arg)
{
	struct iopool_job *job = xmalloc(sizeof(*job));

	job->work = work;
	job->done = done;
	job->arg = arg;
	pool->pending++;
	pthread_mutex_lock(&pool->lock);
	list_push(&pool->todo, job);
	pthread_cond_signal(&pool->cond);
	pthread_mutex_unlock(&pool->lock);
}

size_t
iopool_pending(const struct iopool *pool)
{
	return pool->pending;
}

void
iopool_free(struct iopool *pool)
{
	if (pool == NULL)
		return;
	pthread_mutex_lock(&pool->lock);
	pool->stopping = true;
	pthread_cond_broadcast(&pool->cond);
	pthread_mutex_unlock(&pool->lock);
	for (int i = 0; i < pool->nthreads; i++)
		pthread_join(pool->threads[i], NULL);
	iopool_run_done(pool);
	event_free(pool->ev_done);
	pthread_cond_destroy(&pool->cond);
	pthread_mutex_destroy(&pool->lock);
	free(pool->threads);
	free(pool);
}
