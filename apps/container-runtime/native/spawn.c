/*
 * Starting a monitor from the container runtime's process (a Node-API
 * module). Node starts a child by forking, which copies the page tables of
 * the whole runtime (tens of MiB: 5-7 ms on a virtual machine that traps
 * page-table writes), although the child keeps none of it. posix_spawn
 * shares the parent's memory until the child has executed the monitor.
 *
 * spawn(file, args): runs file with args (args[0] first), its stdin and
 * stderr /dev/null, its stdout a new pipe, no other descriptor of ours, every
 * signal unblocked and at its default action (node ignores SIGPIPE, which an
 * exec would otherwise keep). Returns [pid, the pipe's read end]; throws an
 * Error whose code is the errno's name when it cannot.
 *
 * reap(pid): the child's exit status once it has ended (exit code, or 128 +
 * the signal), -1 while it runs. The caller reaps every child it spawned.
 */
#define _GNU_SOURCE
#define NAPI_VERSION 8
#include <errno.h>
#include <fcntl.h>
#include <node_api.h>
#include <signal.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

extern char **environ;

/* Bounds on what a caller can ask: the monitor's command lines are short. */
#define MAX_ARGS 64
#define MAX_ARG_BYTES 8192

/* Throws an Error whose code is the errno's name (ENOENT, EMFILE...). */
static napi_value fail(napi_env env, const char *what, int err)
{
	char msg[256];
	const char *name = strerrorname_np(err);
	snprintf(msg, sizeof msg, "%s: %s", what, strerror(err));
	napi_throw_error(env, name ? name : "EIO", msg);
	return NULL;
}

/* A string argument copied out (NUL-terminated), or NULL with an exception thrown. */
static char *string_of(napi_env env, napi_value v)
{
	size_t len;
	if (napi_get_value_string_utf8(env, v, NULL, 0, &len) != napi_ok || len > MAX_ARG_BYTES) {
		napi_throw_type_error(env, NULL, "spawn: arguments are strings of at most 8 KiB");
		return NULL;
	}
	char *s = malloc(len + 1);
	if (!s) {
		napi_throw_error(env, NULL, "spawn: out of memory");
		return NULL;
	}
	napi_get_value_string_utf8(env, v, s, len + 1, &len);
	if (strlen(s) != len) {
		free(s);
		napi_throw_type_error(env, NULL, "spawn: an argument holds a NUL byte");
		return NULL;
	}
	return s;
}

static napi_value spawn(napi_env env, napi_callback_info info)
{
	size_t argc = 2;
	napi_value argv[2];
	uint32_t n = 0;
	bool is_array = false;
	napi_get_cb_info(env, info, &argc, argv, NULL, NULL);
	if (argc < 2 || napi_is_array(env, argv[1], &is_array) != napi_ok || !is_array || napi_get_array_length(env, argv[1], &n) != napi_ok || n < 1 || n > MAX_ARGS) {
		napi_throw_type_error(env, NULL, "spawn(file, args): args is a list of 1 to 64 strings");
		return NULL;
	}
	char *file = string_of(env, argv[0]);
	if (!file)
		return NULL;
	char *args[MAX_ARGS + 1] = {0};
	napi_value result = NULL;
	for (uint32_t i = 0; i < n; i++) {
		napi_value a;
		if (napi_get_element(env, argv[1], i, &a) != napi_ok || !(args[i] = string_of(env, a)))
			goto out;
	}

	int pipe_fds[2];
	if (pipe2(pipe_fds, O_CLOEXEC) < 0) {
		result = fail(env, "spawn: pipe", errno);
		goto out;
	}
	posix_spawn_file_actions_t actions;
	posix_spawnattr_t attr;
	sigset_t none, all;
	sigemptyset(&none);
	/*
	 * Every signal, the C library's internal ones (32, 33) too: sigfillset
	 * and sigaddset leave those out, and posix_spawn would leave them ignored
	 * in the child (glibc tests the set bit by bit).
	 */
	memset(&all, 0xff, sizeof all);
	sigdelset(&all, SIGKILL);
	sigdelset(&all, SIGSTOP);
	posix_spawn_file_actions_init(&actions);
	posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0);
	posix_spawn_file_actions_adddup2(&actions, pipe_fds[1], 1);
	posix_spawn_file_actions_addopen(&actions, 2, "/dev/null", O_WRONLY, 0);
	posix_spawn_file_actions_addclosefrom_np(&actions, 3);
	posix_spawnattr_init(&attr);
	posix_spawnattr_setsigmask(&attr, &none);
	posix_spawnattr_setsigdefault(&attr, &all);
	posix_spawnattr_setflags(&attr, POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF);
	pid_t pid;
	int err = posix_spawn(&pid, file, &actions, &attr, args, environ);
	posix_spawn_file_actions_destroy(&actions);
	posix_spawnattr_destroy(&attr);
	close(pipe_fds[1]);
	if (err) {
		close(pipe_fds[0]);
		result = fail(env, file, err);
		goto out;
	}
	napi_value pid_v, fd_v;
	if (napi_create_array_with_length(env, 2, &result) != napi_ok || napi_create_int32(env, pid, &pid_v) != napi_ok ||
	    napi_create_int32(env, pipe_fds[0], &fd_v) != napi_ok || napi_set_element(env, result, 0, pid_v) != napi_ok ||
	    napi_set_element(env, result, 1, fd_v) != napi_ok) {
		/* The child runs, but nobody could read or reap it: it goes. */
		kill(pid, SIGKILL);
		while (waitpid(pid, NULL, 0) < 0 && errno == EINTR) {
		}
		close(pipe_fds[0]);
		result = NULL;
	}
out:
	free(file);
	for (uint32_t i = 0; i < n; i++)
		free(args[i]);
	return result;
}

static napi_value reap(napi_env env, napi_callback_info info)
{
	size_t argc = 1;
	napi_value arg, result;
	int32_t pid = 0;
	napi_get_cb_info(env, info, &argc, &arg, NULL, NULL);
	if (argc < 1 || napi_get_value_int32(env, arg, &pid) != napi_ok || pid <= 0) {
		napi_throw_type_error(env, NULL, "reap(pid): pid is a positive integer");
		return NULL;
	}
	int status;
	pid_t got;
	while ((got = waitpid(pid, &status, WNOHANG)) < 0 && errno == EINTR) {
	}
	if (got < 0)
		return fail(env, "reap", errno);
	int code = got == 0 ? -1 : WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
	napi_create_int32(env, code, &result);
	return result;
}

NAPI_MODULE_INIT()
{
	napi_value fn;
	napi_create_function(env, "spawn", NAPI_AUTO_LENGTH, spawn, NULL, &fn);
	napi_set_named_property(env, exports, "spawn", fn);
	napi_create_function(env, "reap", NAPI_AUTO_LENGTH, reap, NULL, &fn);
	napi_set_named_property(env, exports, "reap", fn);
	return exports;
}
