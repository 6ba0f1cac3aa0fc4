/* SPDX-License-Identifier: ISC */
/*
 * ternctl_tls.h - `ternctl tls-policy DOMAIN` (ternctl_tls.c).
 */
#ifndef TERN_TERNCTL_TLS_H
#define TERN_TERNCTL_TLS_H

/* argv: the arguments after "tls-policy". The exit status. */
int tls_policy_cmd(const char *cfg_path, int argc, char **argv);

#endif
