/*
 * stevedore-shim: the monitor of one container (like containerd-shim or
 * conmon). It creates the container with the OCI runtime, holds its stdio
 * (pipes, or the pty the runtime hands over its console socket), writes the
 * log in Docker's json-file format with rotation, serves an attach socket,
 * starts the container when told to, and records the exit status in a file
 * that outlives it. It runs detached in its own session, so containers keep
 * running when container-runtime restarts.
 *
 * Attach protocol (both directions): frames of 1 type byte, 4 bytes of
 * big-endian length, then the payload.
 *   to clients:   1 stdout, 2 stderr, 3 exit (payload: decimal exit code)
 *   from clients: 0 stdin, 4 stdin closed, 5 resize ("rows cols"),
 *                 6 start (answered with 8 ok or 9 error + message),
 *                 10 subscribe to output, answered with 8 ok (a client that
 *                 never sends it, such as one that only resizes, gets no output)
 *
 * Every consumer is written to without blocking. Output a client has not
 * taken waits in a backlog of its own. While a client's backlog is past
 * CLIENT_BACKLOG_MAX the container's output is not read (the container waits
 * on its pipe, as a writer to a pipe does): the clients are the container
 * runtime's relays, which fall behind only when the machine is busy, and
 * whose own clients are cut off by the API edge when they lag. A client that
 * takes none of its backlog for CLIENT_STUCK_MS is dropped (its connection
 * closed), so one that stops reading holds up the container, its log and
 * the other clients for that long at most.
 * Stdin the container has not read waits too, up to STDIN_BACKLOG_MAX; past
 * that, clients that send stdin are not read until it drains, which holds the
 * writer back through its socket instead of growing memory anywhere.
 *
 * Usage: stevedore-shim --id ID --bundle DIR --state DIR --runtime PATH
 *        [--runtime-root DIR] [--tty] [--stdin] [--stdin-once]
 *        --log FILE [--log-max-size BYTES] [--log-max-files N]
 * On success it prints "ok <container pid>" and exits, leaving the monitor
 * running; on failure "error <message>" and exits 1.
 *
 * With --exec PROCESS_JSON (and no --log) it monitors one process run in the
 * already running container ID (docker exec): it prints "ok 0" once its
 * socket listens, and START runs `runtime exec --detach --process
 * PROCESS_JSON` with the process's stdio held here, as a container's is. The
 * process is this monitor's child through PR_SET_CHILD_SUBREAPER once the
 * runtime has left. A start that fails is answered with 9 error and the
 * runtime's message, and recorded as exit 127 (the command was not found)
 * or 126 (it could not be run), as Docker reports them. A monitor that is
 * not told to START within START_WITHIN_MS goes.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/prctl.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/uio.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <termios.h>
#include <time.h>
#include <unistd.h>

#define MAX_CLIENTS 64
#define LINE_MAX_BYTES (16 * 1024)
/* A log file's size on disk, at most, as a multiple of the output it holds. */
#define LOG_FILE_FACTOR 3
/* Output one client may have waiting before the container's output is held. */
#define CLIENT_BACKLOG_MAX (4 * 1024 * 1024)
/* How long a client past CLIENT_BACKLOG_MAX may take nothing before it is dropped. */
#define CLIENT_STUCK_MS 1000
/* The size of the pipes of a container's output (the kernel's default is 64 KiB). */
#define PIPE_BYTES (1024 * 1024)
/* Stdin waiting for the container; past it, stdin senders are not read. */
#define STDIN_BACKLOG_MAX (1024 * 1024)
/* The largest frame a client may send. */
#define FRAME_MAX (1024 * 1024)
/* A backlog's first allocation; a drained one larger than this is freed. */
#define BACKLOG_MIN (64 * 1024)
/* A drained backlog keeps up to this much memory (a client of a fast container drains it many times a second). */
#define BACKLOG_KEEP (2 * 1024 * 1024)
/* A client's socket buffer: a fast container's output is written to it, not copied into a backlog. */
#define CLIENT_SNDBUF (4 * 1024 * 1024)
/* Once the container has exited, how long clients that take none of their
 * remaining output are waited for. */
#define EXIT_LINGER_MS 10000
/* How long an exec's output is read after its process ended, at most (Docker waits 2 s for an exec's streams). */
#define EXEC_DRAIN_MS 2000
/* How long an exec's monitor waits for its START. */
#define START_WITHIN_MS 60000

enum { FR_STDIN = 0, FR_STDOUT = 1, FR_STDERR = 2, FR_EXIT = 3, FR_STDIN_CLOSE = 4, FR_RESIZE = 5,
       FR_START = 6, FR_OK = 8, FR_ERROR = 9, FR_SUBSCRIBE = 10 };

static const char *opt_id, *opt_bundle, *opt_state, *opt_runtime, *opt_runtime_root, *opt_log, *opt_exec;
static int opt_tty, opt_stdin, opt_stdin_once;
static long long opt_log_max = 10 * 1024 * 1024;
static int opt_log_files = 5;

static int log_fd = -1;
/* The current file's size, and the container's output in it (what --log-max-size counts). */
static long long log_size, log_output;
static pid_t container_pid = -1;

/* An exec's state between its monitor's start-up and its START. */
static int exec_started, exec_failed, exec_failed_code;
static int exec_in = -1, exec_out = -1, exec_err = -1, exec_console = -1, exec_runtime_err = -1, exec_message = -1;
static char exec_console_path[4096];
/* A size asked for before the exec's terminal exists, applied when it comes. */
static struct winsize pending_size;

/* Bytes waiting for a non-blocking descriptor: a ring of cap bytes, len of them from head. */
struct backlog {
  unsigned char *data;
  size_t head, len, cap;
};

struct client {
  int fd;
  int subscribed;
  int sends_stdin; /* not read while the container's stdin backlog is full */
  unsigned char hdr[5];
  size_t hdr_len;
  unsigned char *body;
  size_t body_len, body_want;
  struct backlog out;
  long long progress_ms; /* when it last took any of its backlog */
};
static struct client clients[MAX_CLIENTS];

/* The container's stdin (a pipe, or the pty) and what waits for it. */
static int stdin_fd = -1, pty = -1;
static struct backlog stdin_backlog;
static int stdin_close_wanted;

struct line_buf {
  const char *stream;
  char data[LINE_MAX_BYTES];
  size_t len;
};
static struct line_buf out_line = {"stdout", {0}, 0}, err_line = {"stderr", {0}, 0};

static void die_to(int fd, const char *fmt, ...) {
  char msg[1024];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(msg, sizeof msg, fmt, ap);
  va_end(ap);
  if (fd >= 0) dprintf(fd, "error %s\n", msg);
  _exit(1);
}

/* Only for the log, a regular file. */
static int write_all(int fd, const void *buf, size_t len) {
  const char *p = buf;
  while (len > 0) {
    ssize_t n = write(fd, p, len);
    if (n < 0) {
      if (errno == EINTR) continue;
      if (errno == EAGAIN) {
        struct pollfd pfd = {fd, POLLOUT, 0};
        poll(&pfd, 1, 1000);
        continue;
      }
      return -1;
    }
    p += n;
    len -= (size_t)n;
  }
  return 0;
}

/* RFC 3339 with nanoseconds, UTC, as Docker's json-file writes it. */
static void now_rfc3339(char *out, size_t size) {
  struct timespec ts;
  struct tm tm;
  clock_gettime(CLOCK_REALTIME, &ts);
  gmtime_r(&ts.tv_sec, &tm);
  char base[32];
  strftime(base, sizeof base, "%Y-%m-%dT%H:%M:%S", &tm);
  snprintf(out, size, "%s.%09ldZ", base, ts.tv_nsec);
}

static void open_log(void) {
  log_fd = open(opt_log, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600);
  struct stat st;
  log_size = (log_fd >= 0 && fstat(log_fd, &st) == 0) ? st.st_size : 0;
  /* A file kept from an earlier run: its output is not known, so all of it is counted as output. */
  log_output = log_size;
}

/* json.log -> json.log.1 -> ... -> json.log.<files-1>; the oldest goes. */
static void rotate_log(void) {
  if (opt_log_files <= 1) {
    if (ftruncate(log_fd, 0) == 0) log_size = log_output = 0;
    return;
  }
  char from[4096], to[4096];
  for (int i = opt_log_files - 1; i >= 1; i--) {
    if (i == 1) snprintf(from, sizeof from, "%s", opt_log);
    else snprintf(from, sizeof from, "%s.%d", opt_log, i - 1);
    snprintf(to, sizeof to, "%s.%d", opt_log, i);
    rename(from, to);
  }
  close(log_fd);
  open_log();
}

/*
 * The log is written a chunk of the container's output at a time: its
 * entries are gathered here and written with one write(2), all stamped with
 * the time the chunk was read (one clock reading, not one per line).
 */
#define LOG_PENDING_MAX (1024 * 1024)
static char log_pending[LOG_PENDING_MAX];
static size_t log_pending_len;
/* The end of every entry of the chunk being logged: `","stream":"stdout","time":"..."}\n`. */
static char log_suffix[128];
static size_t log_suffix_len;

static void log_flush(void) {
  if (log_fd >= 0 && log_pending_len && write_all(log_fd, log_pending, log_pending_len) == 0) log_size += (long long)log_pending_len;
  log_pending_len = 0;
}

/* Whether any of eight bytes is a control byte, '"' or '\\' (exact: the word tests of "Bit Twiddling Hacks"). */
static inline int needs_escape(uint64_t w) {
  const uint64_t ones = 0x0101010101010101ULL, highs = 0x8080808080808080ULL;
  uint64_t quote = w ^ (ones * '"'), backslash = w ^ (ones * '\\');
  return (((w - ones * 0x20) & ~w) | ((quote - ones) & ~quote) | ((backslash - ones) & ~backslash)) & highs ? 1 : 0;
}

/* One json-file entry: {"log":"...","stream":"stdout","time":"..."} */
static void log_entry(const char *stream, const char *data, size_t len) {
  if (log_fd < 0) return;
  static const char hex[] = "0123456789abcdef";
  size_t most = len * 6 + 128;
  if (log_pending_len + most > sizeof log_pending) log_flush();
  char *buf = log_pending + log_pending_len;
  size_t o = 0;
  memcpy(buf, "{\"log\":\"", 8);
  o = 8;
  for (size_t i = 0; i < len;) {
    /* Eight bytes at a time while none needs escaping (most output). */
    while (i + 8 <= len) {
      uint64_t w;
      memcpy(&w, data + i, 8);
      if (needs_escape(w)) break;
      memcpy(buf + o, &w, 8);
      o += 8;
      i += 8;
    }
    if (i >= len) break;
    unsigned char c = (unsigned char)data[i++];
    if (c >= 0x20 && c != '"' && c != '\\') { buf[o++] = (char)c; continue; }
    buf[o++] = '\\';
    if (c == '"' || c == '\\') buf[o++] = (char)c;
    else if (c == '\n') buf[o++] = 'n';
    else if (c == '\r') buf[o++] = 'r';
    else if (c == '\t') buf[o++] = 't';
    else { buf[o++] = 'u'; buf[o++] = '0'; buf[o++] = '0'; buf[o++] = hex[c >> 4]; buf[o++] = hex[c & 15]; }
  }
  (void)stream;
  memcpy(buf + o, log_suffix, log_suffix_len);
  o += log_suffix_len;
  /*
   * A file holds --log-max-size bytes of output, whatever the JSON around
   * them costs; output that escapes badly (control bytes: 6 bytes each) is
   * bounded too, at LOG_FILE_FACTOR times that on disk.
   */
  long long size = log_size + (long long)log_pending_len;
  if (opt_log_max > 0 && size > 0 && (log_output + (long long)len > opt_log_max || size + (long long)o > opt_log_max * LOG_FILE_FACTOR)) {
    /* The entry goes to the next file: what was gathered before it is written to this one. */
    char entry[LINE_MAX_BYTES * 6 + 128];
    memcpy(entry, buf, o);
    log_flush();
    rotate_log();
    memcpy(log_pending, entry, o);
  }
  log_pending_len += o;
  log_output += (long long)len;
}

/* Lines go to the log whole; a line longer than the buffer is cut. Written before returning. */
static void log_bytes(struct line_buf *lb, const char *data, size_t len, int flush) {
  char now[64];
  now_rfc3339(now, sizeof now);
  log_suffix_len = (size_t)snprintf(log_suffix, sizeof log_suffix, "\",\"stream\":\"%s\",\"time\":\"%s\"}\n", lb->stream, now);
  size_t i = 0;
  while (i < len) {
    const char *nl = memchr(data + i, '\n', len - i);
    size_t end = nl ? (size_t)(nl - data) + 1 : len;
    size_t piece = end - i;
    if (lb->len == 0 && nl && piece <= sizeof lb->data) {
      /* A whole line in what was read: logged from where it is. */
      log_entry(lb->stream, data + i, piece);
      i = end;
      continue;
    }
    size_t room = sizeof lb->data - lb->len;
    size_t take = piece < room ? piece : room;
    memcpy(lb->data + lb->len, data + i, take);
    lb->len += take;
    i += take;
    if (lb->len == sizeof lb->data || (nl && i == end)) {
      log_entry(lb->stream, lb->data, lb->len);
      lb->len = 0;
    }
  }
  if (flush && lb->len) {
    log_entry(lb->stream, lb->data, lb->len);
    lb->len = 0;
  }
  log_flush();
}

static long long now_ms(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void backlog_free(struct backlog *b) {
  free(b->data);
  memset(b, 0, sizeof *b);
}

/* Appends n bytes; -1 when memory runs out (the backlog is then unchanged). */
static int backlog_push(struct backlog *b, const void *p, size_t n) {
  if (n == 0) return 0;
  if (b->cap - b->len < n) {
    size_t cap = b->cap ? b->cap : BACKLOG_MIN;
    while (cap - b->len < n) cap *= 2;
    unsigned char *data = malloc(cap);
    if (!data) return -1;
    size_t first = b->len < b->cap - b->head ? b->len : b->cap - b->head;
    if (b->len) {
      memcpy(data, b->data + b->head, first);
      memcpy(data + first, b->data, b->len - first);
    }
    free(b->data);
    b->data = data;
    b->cap = cap;
    b->head = 0;
  }
  size_t tail = (b->head + b->len) % b->cap;
  size_t first = n < b->cap - tail ? n : b->cap - tail;
  memcpy(b->data + tail, p, first);
  memcpy(b->data, (const unsigned char *)p + first, n - first);
  b->len += n;
  return 0;
}

/* Writes what fd takes without blocking; -1 on an error other than a full descriptor. */
static int backlog_flush(struct backlog *b, int fd) {
  while (b->len) {
    size_t first = b->len < b->cap - b->head ? b->len : b->cap - b->head;
    struct iovec iov[2] = {{b->data + b->head, first}, {b->data, b->len - first}};
    ssize_t n = writev(fd, iov, b->len > first ? 2 : 1);
    if (n < 0) {
      if (errno == EINTR) continue;
      return errno == EAGAIN || errno == EWOULDBLOCK ? 0 : -1;
    }
    b->head = (b->head + (size_t)n) % b->cap;
    b->len -= (size_t)n;
  }
  b->head = 0;
  if (b->cap > BACKLOG_KEEP) backlog_free(b); /* a client that caught up gives most of the memory back */
  return 0;
}

/* Closes a client; `why` is logged (shim.log) when the monitor chose to. */
static void drop_client(int i, const char *why) {
  if (why) fprintf(stderr, "stevedore-shim: dropped an attach client: %s\n", why);
  close(clients[i].fd);
  free(clients[i].body);
  backlog_free(&clients[i].out);
  memset(&clients[i], 0, sizeof clients[i]);
  clients[i].fd = -1;
}

/*
 * Sends a frame: written at once as far as the socket takes it, the rest
 * queued. Returns NULL, or why the client has to go; `*quiet` is set when
 * that needs no log line (the client went away).
 */
static const char *client_send(struct client *cl, int type, const void *data, size_t len, int *quiet) {
  unsigned char hdr[5] = {(unsigned char)type, (unsigned char)(len >> 24), (unsigned char)(len >> 16), (unsigned char)(len >> 8), (unsigned char)len};
  size_t done = 0;
  *quiet = 0;
  if (cl->out.len == 0) {
    struct iovec iov[2] = {{hdr, 5}, {(void *)data, len}};
    for (;;) {
      ssize_t n = writev(cl->fd, iov, len ? 2 : 1);
      if (n >= 0) { done = (size_t)n; break; }
      if (errno == EINTR) continue;
      if (errno == EAGAIN || errno == EWOULDBLOCK) break;
      *quiet = 1;
      return "its connection failed";
    }
    if (done == 5 + len) return NULL;
  }
  /* Output is held once a backlog passes the bound: a read of it (256 KiB) goes past at most. */
  if (cl->out.len + 5 + len - done > 2 * CLIENT_BACKLOG_MAX) return "it fell behind the container's output by more than twice CLIENT_BACKLOG_MAX";
  if (cl->out.len == 0) cl->progress_ms = now_ms();
  if (done < 5 && backlog_push(&cl->out, hdr + done, 5 - done) < 0) return "out of memory";
  size_t from = done > 5 ? done - 5 : 0;
  if (backlog_push(&cl->out, (const unsigned char *)data + from, len - from) < 0) return "out of memory";
  return NULL;
}

static void send_or_drop(int i, int type, const void *data, size_t len) {
  int quiet;
  const char *why = client_send(&clients[i], type, data, len, &quiet);
  if (why) drop_client(i, quiet ? NULL : why);
}

static void broadcast(int type, const void *data, size_t len) {
  for (int i = 0; i < MAX_CLIENTS; i++)
    if (clients[i].fd >= 0 && clients[i].subscribed) send_or_drop(i, type, data, len);
}

/*
 * Whether the container's output waits for a client past the bound; one
 * that has taken none of it for CLIENT_STUCK_MS is dropped instead.
 */
static int output_held(void) {
  int held = 0;
  long long now = now_ms();
  for (int i = 0; i < MAX_CLIENTS; i++) {
    if (clients[i].fd < 0 || clients[i].out.len <= CLIENT_BACKLOG_MAX) continue;
    if (now - clients[i].progress_ms >= CLIENT_STUCK_MS) drop_client(i, "it took none of its output for CLIENT_STUCK_MS");
    else held = 1;
  }
  return held;
}

/* The container takes no more stdin: what waits is discarded, later input ignored. */
static void stdin_end(void) {
  if (stdin_fd >= 0 && stdin_fd != pty) close(stdin_fd);
  stdin_fd = -1;
  backlog_free(&stdin_backlog);
  stdin_close_wanted = 0;
}

/* Writes what waits for the container's stdin; closes it, when asked, once all is written. */
static void stdin_flush(void) {
  if (stdin_fd < 0) return;
  /* An error is EPIPE (the container closed its stdin) or EIO (its terminal is gone). */
  if (backlog_flush(&stdin_backlog, stdin_fd) < 0 || (stdin_backlog.len == 0 && stdin_close_wanted)) stdin_end();
}

static int stdin_full(void) {
  return stdin_backlog.len >= STDIN_BACKLOG_MAX;
}

/* A client that sent stdin waits, unread, while the container's stdin backlog is full. */
static int client_readable(const struct client *cl) {
  return !(cl->sends_stdin && stdin_full());
}

static int receive_console(int listen_fd);

/*
 * Every signal at its default action. A monitor may be started with some
 * ignored (posix_spawn leaves the C library's internal signals, 32 and 33,
 * ignored in its child; a supervisor may ignore others), and an ignored
 * signal stays ignored across exec: through the OCI runtime it would reach
 * the container's processes. The system call itself: the C library refuses
 * its internal signals.
 */
#if !defined(__x86_64__) && !defined(__aarch64__)
#error "default_signals: the kernel's sigaction layout is known here for x86_64 and arm64 only"
#endif
static void default_signals(void) {
  struct { void (*handler)(int); unsigned long flags; void (*restorer)(void); uint64_t mask; } dfl = {SIG_DFL, 0, NULL, 0};
  _Static_assert(sizeof dfl == 32, "the kernel's struct sigaction");
  for (int sig = 1; sig <= 64; sig++)
    if (sig != SIGKILL && sig != SIGSTOP) syscall(SYS_rt_sigaction, sig, &dfl, NULL, sizeof dfl.mask);
}

/* In a child about to execute the OCI runtime: what the monitor changed for itself (SIGPIPE ignored, signals blocked) undone. */
static void child_signals(void) {
  sigset_t none;
  sigemptyset(&none);
  signal(SIGPIPE, SIG_DFL);
  sigprocmask(SIG_SETMASK, &none, NULL);
}

static int run_runtime(char *const argv[]) {
  pid_t pid = fork();
  if (pid < 0) return -1;
  if (pid == 0) {
    int null = open("/dev/null", O_RDWR);
    dup2(null, 0);
    if (null > 2) close(null);
    child_signals();
    execvp(argv[0], argv);
    _exit(127);
  }
  int status;
  while (waitpid(pid, &status, 0) < 0 && errno == EINTR) {}
  return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
}

/* Runs the runtime with the given stdio (-1: /dev/null); returns its exit status. */
static int run_runtime_stdio(char *const argv[], int in, int out, int err) {
  pid_t pid = fork();
  if (pid < 0) return -1;
  if (pid == 0) {
    int null = open("/dev/null", O_RDWR);
    dup2(in >= 0 ? in : null, 0);
    dup2(out >= 0 ? out : null, 1);
    dup2(err >= 0 ? err : null, 2);
    if (null > 2) close(null);
    child_signals();
    execvp(argv[0], argv);
    _exit(127);
  }
  int status;
  while (waitpid(pid, &status, 0) < 0 && errno == EINTR) {}
  return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
}

static void runtime_argv(const char **argv, int *n, const char *verb) {
  argv[(*n)++] = opt_runtime;
  if (opt_runtime_root) { argv[(*n)++] = "--root"; argv[(*n)++] = opt_runtime_root; }
  argv[(*n)++] = verb;
}

/* What the runtime said when an exec could not start: its stderr, on one line. */
static void runtime_message(int fd, char *err, size_t errlen) {
  char buf[1024];
  fcntl(fd, F_SETFL, O_NONBLOCK);
  ssize_t got = read(fd, buf, sizeof buf - 1);
  if (got <= 0) return;
  buf[got] = 0;
  while (got > 0 && (buf[got - 1] == '\n' || buf[got - 1] == ' ')) buf[--got] = 0;
  for (char *c = buf; *c; c++) if (*c == '\n') *c = ' ';
  /* A logrus line (time="..." level=error msg="..."): its message alone. */
  char *msg = strstr(buf, "msg=\"");
  if (msg) {
    msg += 5;
    char *out = msg;
    for (char *c = msg; *c && *c != '"'; c++) {
      if (*c == '\\' && c[1]) c++;
      *out++ = *c;
    }
    *out = 0;
    snprintf(err, errlen, "%s", msg);
    return;
  }
  snprintf(err, errlen, "%s", buf);
}

/*
 * Runs the exec's process. Its stdio is the monitor's pipes, or the terminal
 * the runtime sends over the console socket; the runtime's own stderr is
 * where a failure to start is read from (with pipes, the process's stderr).
 */
static int start_exec(char *err, size_t errlen) {
  char pid_path[4096];
  snprintf(pid_path, sizeof pid_path, "%s/exec.pid", opt_state);
  const char *argv[16];
  int n = 0;
  runtime_argv(argv, &n, "exec");
  argv[n++] = "--detach";
  argv[n++] = "--pid-file";
  argv[n++] = pid_path;
  argv[n++] = "--process";
  argv[n++] = opt_exec;
  if (opt_tty) { argv[n++] = "--console-socket"; argv[n++] = exec_console_path; }
  argv[n++] = opt_id;
  argv[n] = NULL;
  int rc = opt_tty ? run_runtime_stdio((char *const *)argv, -1, exec_runtime_err, exec_runtime_err)
                   : run_runtime_stdio((char *const *)argv, exec_in, exec_out, exec_err);
  unlink(opt_exec); /* read by the runtime: no longer needed */
  if (exec_in >= 0) close(exec_in);
  if (exec_out >= 0) close(exec_out);
  if (exec_err >= 0) close(exec_err);
  if (exec_runtime_err >= 0) close(exec_runtime_err);
  exec_in = exec_out = exec_err = exec_runtime_err = -1;
  if (rc != 0) runtime_message(exec_message, err, errlen);
  /* With pipes it is the process's stderr, read by the main loop from here on. */
  if (opt_tty && exec_message >= 0) close(exec_message);
  exec_message = -1;
  if (rc == 0 && opt_tty) {
    struct pollfd p = {exec_console, POLLIN, 0};
    if (poll(&p, 1, 10000) > 0) pty = receive_console(exec_console);
    if (pty < 0) { rc = -1; snprintf(err, errlen, "no terminal received from the runtime"); }
    else if (pending_size.ws_row || pending_size.ws_col) ioctl(pty, TIOCSWINSZ, &pending_size);
  }
  if (exec_console >= 0) { close(exec_console); unlink(exec_console_path); exec_console = -1; }
  FILE *pf = rc == 0 ? fopen(pid_path, "r") : NULL;
  if (rc == 0 && (!pf || fscanf(pf, "%d", &container_pid) != 1)) { rc = -1; snprintf(err, errlen, "no pid from the runtime"); }
  if (pf) fclose(pf);
  return rc;
}

static int start_container(char *err, size_t errlen) {
  const char *argv[8];
  int n = 0;
  runtime_argv(argv, &n, "start");
  argv[n++] = opt_id;
  argv[n] = NULL;
  int rc = run_runtime((char *const *)argv);
  if (rc != 0) snprintf(err, errlen, "%s start exited with %d", opt_runtime, rc);
  return rc;
}

static void write_exit_file(int code) {
  char path[4096], tmp[4096], ts[64];
  now_rfc3339(ts, sizeof ts);
  snprintf(path, sizeof path, "%s/exit.json", opt_state);
  snprintf(tmp, sizeof tmp, "%s/exit.json.tmp", opt_state);
  int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC, 0600);
  if (fd < 0) return;
  dprintf(fd, "{\"exitCode\":%d,\"finishedAt\":\"%s\",\"pid\":%d}\n", code, ts, (int)container_pid);
  /* A container's exit outlives a crash of the host's page cache; an exec's is read at once (and lost with its container). */
  if (!opt_exec) fsync(fd);
  close(fd);
  rename(tmp, path);
}

/* Receives the pty master the runtime sends over the console socket. */
static int receive_console(int listen_fd) {
  int conn = accept4(listen_fd, NULL, NULL, SOCK_CLOEXEC);
  if (conn < 0) return -1;
  char buf[256];
  char cbuf[CMSG_SPACE(sizeof(int))];
  struct iovec iov = {buf, sizeof buf};
  struct msghdr msg = {0};
  msg.msg_iov = &iov;
  msg.msg_iovlen = 1;
  msg.msg_control = cbuf;
  msg.msg_controllen = sizeof cbuf;
  if (recvmsg(conn, &msg, 0) < 0) { close(conn); return -1; }
  close(conn);
  struct cmsghdr *c = CMSG_FIRSTHDR(&msg);
  if (!c || c->cmsg_type != SCM_RIGHTS) return -1;
  int fd;
  memcpy(&fd, CMSG_DATA(c), sizeof fd);
  return fd;
}

static int listen_unix(const char *path) {
  int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
  struct sockaddr_un addr = {.sun_family = AF_UNIX};
  if (strlen(path) >= sizeof addr.sun_path) { errno = ENAMETOOLONG; return -1; }
  strcpy(addr.sun_path, path);
  unlink(path);
  if (bind(fd, (struct sockaddr *)&addr, sizeof addr) < 0 || listen(fd, 16) < 0) return -1;
  chmod(path, 0600);
  return fd;
}

/* Acts on one frame from a client; returns NULL, or why the client has to go. */
static const char *handle_frame(struct client *cl, int type, const unsigned char *data, size_t len) {
  int quiet;
  switch (type) {
    case FR_STDIN:
      if (stdin_fd >= 0 && len) {
        if (backlog_push(&stdin_backlog, data, len) < 0) return "out of memory";
        stdin_flush();
      }
      break;
    case FR_STDIN_CLOSE:
      /* Only a non-tty container started with StdinOnce sees its stdin close, after what was sent before. */
      if (opt_stdin_once && !opt_tty && stdin_fd >= 0) {
        stdin_close_wanted = 1;
        stdin_flush();
      }
      break;
    case FR_RESIZE:
      if (pty >= 0 || (opt_exec && opt_tty)) {
        char text[64] = {0};
        memcpy(text, data, len < sizeof text - 1 ? len : sizeof text - 1);
        struct winsize ws = {0};
        unsigned rows = 0, cols = 0;
        if (sscanf(text, "%u %u", &rows, &cols) == 2) {
          ws.ws_row = (unsigned short)rows;
          ws.ws_col = (unsigned short)cols;
          if (pty >= 0) ioctl(pty, TIOCSWINSZ, &ws);
          else pending_size = ws;
        }
      }
      break;
    case FR_SUBSCRIBE:
      /* Acknowledged, so that a client can wait for it before asking for START. */
      cl->subscribed = 1;
      return client_send(cl, FR_OK, NULL, 0, &quiet);
    case FR_START: {
      char err[1024] = {0};
      if (!opt_exec) {
        if (start_container(err, sizeof err) == 0) return client_send(cl, FR_OK, NULL, 0, &quiet);
        return client_send(cl, FR_ERROR, err, strlen(err), &quiet);
      }
      if (exec_started) return client_send(cl, FR_ERROR, "the exec has already started", 28, &quiet);
      exec_started = 1;
      if (start_exec(err, sizeof err) == 0) return client_send(cl, FR_OK, NULL, 0, &quiet);
      if (!err[0]) snprintf(err, sizeof err, "%s exec failed", opt_runtime);
      /* Docker's codes for a process that never ran: 127 not found, 126 not runnable. */
      exec_failed = 1;
      exec_failed_code = (strstr(err, "not found") || strstr(err, "no such file")) ? 127 : 126;
      return client_send(cl, FR_ERROR, err, strlen(err), &quiet);
    }
  }
  return NULL;
}

/* Reads what a client sent; returns 0, or -1 when it has to go (`*why` says why, when worth a log line). */
static int read_client(struct client *cl, const char **why) {
  unsigned char buf[32768];
  *why = NULL;
  ssize_t n = read(cl->fd, buf, sizeof buf);
  if (n <= 0) return (n < 0 && (errno == EINTR || errno == EAGAIN)) ? 0 : -1;
  size_t i = 0;
  while (i < (size_t)n) {
    if (cl->hdr_len < 5) {
      cl->hdr[cl->hdr_len++] = buf[i++];
      if (cl->hdr_len == 5) {
        cl->body_want = ((size_t)cl->hdr[1] << 24) | ((size_t)cl->hdr[2] << 16) | ((size_t)cl->hdr[3] << 8) | cl->hdr[4];
        if (cl->body_want > FRAME_MAX) return *why = "it sent a frame over 1 MiB", -1;
        if (cl->hdr[0] == FR_STDIN) cl->sends_stdin = 1;
        cl->body = cl->body_want ? malloc(cl->body_want) : NULL;
        if (cl->body_want && !cl->body) return *why = "out of memory", -1;
        cl->body_len = 0;
      }
    } else {
      size_t take = (size_t)n - i;
      if (take > cl->body_want - cl->body_len) take = cl->body_want - cl->body_len;
      memcpy(cl->body + cl->body_len, buf + i, take);
      cl->body_len += take;
      i += take;
    }
    if (cl->hdr_len == 5 && cl->body_len == cl->body_want) {
      *why = handle_frame(cl, cl->hdr[0], cl->body, cl->body_len);
      if (*why) return -1;
      free(cl->body);
      cl->body = NULL;
      cl->hdr_len = 0;
      cl->body_len = cl->body_want = 0;
    }
  }
  return 0;
}

static void usage(void) {
  fprintf(stderr, "usage: stevedore-shim --id ID --bundle DIR --state DIR --runtime PATH [--runtime-root DIR] [--tty] [--stdin] [--stdin-once] --log FILE [--log-max-size N] [--log-max-files N]\n"
                  "       stevedore-shim --id ID --state DIR --runtime PATH [--runtime-root DIR] [--tty] [--stdin] --exec PROCESS_JSON\n");
  exit(2);
}

int main(int argc, char **argv) {
  for (int i = 1; i < argc; i++) {
    const char *a = argv[i];
    const char *v = i + 1 < argc ? argv[i + 1] : NULL;
    if (!strcmp(a, "--id") && v) { opt_id = v; i++; }
    else if (!strcmp(a, "--bundle") && v) { opt_bundle = v; i++; }
    else if (!strcmp(a, "--state") && v) { opt_state = v; i++; }
    else if (!strcmp(a, "--runtime") && v) { opt_runtime = v; i++; }
    else if (!strcmp(a, "--runtime-root") && v) { opt_runtime_root = v; i++; }
    else if (!strcmp(a, "--log") && v) { opt_log = v; i++; }
    else if (!strcmp(a, "--exec") && v) { opt_exec = v; i++; }
    else if (!strcmp(a, "--log-max-size") && v) { opt_log_max = atoll(v); i++; }
    else if (!strcmp(a, "--log-max-files") && v) { opt_log_files = atoi(v); i++; }
    else if (!strcmp(a, "--tty")) opt_tty = 1;
    else if (!strcmp(a, "--stdin")) opt_stdin = 1;
    else if (!strcmp(a, "--stdin-once")) opt_stdin_once = 1;
    else usage();
  }
  if (!opt_id || !opt_state || !opt_runtime || (opt_exec ? opt_log != NULL : !opt_bundle || !opt_log)) usage();
  default_signals();

  /* The parent waits for the monitor to report the container created, then leaves. */
  int report[2];
  if (pipe2(report, O_CLOEXEC) < 0) die_to(1, "pipe: %s", strerror(errno));
  pid_t first = fork();
  if (first < 0) die_to(1, "fork: %s", strerror(errno));
  if (first > 0) {
    close(report[1]);
    char msg[1100];
    ssize_t n = read(report[0], msg, sizeof msg - 1);
    if (n <= 0) { printf("error the monitor died during start-up\n"); return 1; }
    msg[n] = 0;
    fputs(msg, stdout);
    return strncmp(msg, "ok ", 3) == 0 ? 0 : 1;
  }
  close(report[0]);
  setsid();
  prctl(PR_SET_CHILD_SUBREAPER, 1);
  signal(SIGPIPE, SIG_IGN);

  char path[4096];
  snprintf(path, sizeof path, "%s/shim.log", opt_state);
  int diag = open(path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600);
  int devnull = open("/dev/null", O_RDWR | O_CLOEXEC);
  dup2(devnull, 0);
  dup2(diag >= 0 ? diag : devnull, 1);
  dup2(diag >= 0 ? diag : devnull, 2);

  if (opt_log) {
    open_log();
    if (log_fd < 0) die_to(report[1], "cannot open the log %s: %s", opt_log, strerror(errno));
  }

  sigset_t mask;
  sigemptyset(&mask);
  sigaddset(&mask, SIGCHLD);
  sigaddset(&mask, SIGTERM);
  sigprocmask(SIG_BLOCK, &mask, NULL);
  int sfd = signalfd(-1, &mask, SFD_CLOEXEC | SFD_NONBLOCK);

  snprintf(path, sizeof path, "%s/attach.sock", opt_state);
  int attach_fd = listen_unix(path);
  if (attach_fd < 0) die_to(report[1], "cannot listen on %s: %s", path, strerror(errno));

  /* The container's stdio: three pipes, or a pty from the runtime. */
  int in_pipe[2] = {-1, -1}, out_pipe[2] = {-1, -1}, err_pipe[2] = {-1, -1};
  int out_fd = -1, err_fd = -1;
  if (opt_exec) {
    /* The process starts at START; its stdio is made ready now. */
    if (opt_tty) {
      int rt_err[2];
      snprintf(exec_console_path, sizeof exec_console_path, "%s/console.sock", opt_state);
      exec_console = listen_unix(exec_console_path);
      if (exec_console < 0) die_to(report[1], "cannot listen on %s: %s", exec_console_path, strerror(errno));
      if (pipe2(rt_err, O_CLOEXEC) < 0) die_to(report[1], "pipe: %s", strerror(errno));
      exec_message = rt_err[0];
      exec_runtime_err = rt_err[1];
    } else {
      if (pipe2(out_pipe, O_CLOEXEC) < 0 || pipe2(err_pipe, O_CLOEXEC) < 0 || pipe2(in_pipe, O_CLOEXEC) < 0) die_to(report[1], "pipe: %s", strerror(errno));
      fcntl(out_pipe[0], F_SETPIPE_SZ, PIPE_BYTES);
      fcntl(err_pipe[0], F_SETPIPE_SZ, PIPE_BYTES);
      exec_out = out_pipe[1];
      exec_err = err_pipe[1];
      exec_in = opt_stdin ? in_pipe[0] : -1;
      if (!opt_stdin) close(in_pipe[0]);
      stdin_fd = opt_stdin ? in_pipe[1] : -1;
      if (!opt_stdin) close(in_pipe[1]);
      out_fd = out_pipe[0];
      err_fd = err_pipe[0];
      exec_message = err_fd;
    }
    if (stdin_fd >= 0) fcntl(stdin_fd, F_SETFL, fcntl(stdin_fd, F_GETFL) | O_NONBLOCK);
    goto monitor;
  }
  int console_listen = -1;
  char console_path[4096];
  const char *cargv[16];
  int n = 0;
  runtime_argv(cargv, &n, "create");
  cargv[n++] = "--bundle";
  cargv[n++] = opt_bundle;
  snprintf(path, sizeof path, "%s/init.pid", opt_state);
  cargv[n++] = "--pid-file";
  if (!(cargv[n++] = strdup(path))) die_to(report[1], "out of memory");
  if (opt_tty) {
    snprintf(console_path, sizeof console_path, "%s/console.sock", opt_state);
    console_listen = listen_unix(console_path);
    if (console_listen < 0) die_to(report[1], "cannot listen on %s: %s", console_path, strerror(errno));
    cargv[n++] = "--console-socket";
    cargv[n++] = console_path;
  }
  cargv[n++] = opt_id;
  cargv[n] = NULL;

  if (!opt_tty) {
    if (pipe2(out_pipe, 0) < 0 || pipe2(err_pipe, 0) < 0 || pipe2(in_pipe, 0) < 0) die_to(report[1], "pipe: %s", strerror(errno));
    fcntl(out_pipe[0], F_SETPIPE_SZ, PIPE_BYTES);
    fcntl(err_pipe[0], F_SETPIPE_SZ, PIPE_BYTES);
  }
  pid_t creator = fork();
  if (creator < 0) die_to(report[1], "fork: %s", strerror(errno));
  if (creator == 0) {
    child_signals();
    if (!opt_tty) {
      dup2(opt_stdin ? in_pipe[0] : devnull, 0);
      dup2(out_pipe[1], 1);
      dup2(err_pipe[1], 2);
    } else {
      dup2(devnull, 0);
    }
    execvp(cargv[0], (char *const *)cargv);
    _exit(127);
  }
  if (opt_tty) {
    struct pollfd p = {console_listen, POLLIN, 0};
    if (poll(&p, 1, 30000) <= 0) die_to(report[1], "the runtime sent no terminal");
    pty = receive_console(console_listen);
    close(console_listen);
    unlink(console_path);
    if (pty < 0) die_to(report[1], "no terminal received from the runtime");
  }
  int status;
  while (waitpid(creator, &status, 0) < 0 && errno == EINTR) {}
  if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
    char tail[800] = {0};
    snprintf(path, sizeof path, "%s/shim.log", opt_state);
    int lf = open(path, O_RDONLY);
    if (lf >= 0) {
      off_t size = lseek(lf, 0, SEEK_END);
      lseek(lf, size > 700 ? size - 700 : 0, SEEK_SET);
      ssize_t got = read(lf, tail, sizeof tail - 1);
      if (got > 0) tail[got] = 0;
      close(lf);
      for (char *c = tail; *c; c++) if (*c == '\n') *c = ' ';
    }
    /* Container errors from runc arrive on the container's stderr pipe when not using a tty. */
    if (!opt_tty) {
      char buf[700];
      fcntl(err_pipe[0], F_SETFL, O_NONBLOCK);
      ssize_t got = read(err_pipe[0], buf, sizeof buf - 1);
      if (got > 0) { buf[got] = 0; for (char *c = buf; *c; c++) if (*c == '\n') *c = ' '; snprintf(tail, sizeof tail, "%s", buf); }
    }
    die_to(report[1], "%s create failed: %s", opt_runtime, tail[0] ? tail : "no message");
  }
  snprintf(path, sizeof path, "%s/init.pid", opt_state);
  FILE *pf = fopen(path, "r");
  if (!pf || fscanf(pf, "%d", &container_pid) != 1) die_to(report[1], "no pid from the runtime");
  fclose(pf);

  if (opt_tty) {
    out_fd = pty;
    stdin_fd = opt_stdin ? pty : -1;
  } else {
    close(in_pipe[0]);
    close(out_pipe[1]);
    close(err_pipe[1]);
    stdin_fd = opt_stdin ? in_pipe[1] : -1;
    if (!opt_stdin) close(in_pipe[1]);
    out_fd = out_pipe[0];
    err_fd = err_pipe[0];
  }
  /* Stdin is written as the container takes it (the pty's reads are poll-driven too). */
  if (stdin_fd >= 0) fcntl(stdin_fd, F_SETFL, fcntl(stdin_fd, F_GETFL) | O_NONBLOCK);
monitor:
  for (int i = 0; i < MAX_CLIENTS; i++) clients[i].fd = -1;
  snprintf(path, sizeof path, "%s/shim.pid", opt_state);
  int sp = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
  if (sp >= 0) { dprintf(sp, "%d\n", (int)getpid()); close(sp); }

  dprintf(report[1], "ok %d\n", opt_exec ? 0 : (int)container_pid);
  close(report[1]);

  int exited = 0, exit_code = 0;
  long long start_deadline = now_ms() + START_WITHIN_MS, drain_until = 0;
  /* Once the container has exited, what is left in its pipes is drained until they close or stay quiet this long. */
  long long quiet_until = 0;
  for (;;) {
    /* Fixed places: signals, the listener, stdout, stderr, stdin (-1: nothing waits), then one per client. */
    struct pollfd fds[5 + MAX_CLIENTS];
    fds[0] = (struct pollfd){sfd, POLLIN, 0};
    fds[1] = (struct pollfd){attach_fd, POLLIN, 0};
    int held = output_held();
    fds[2] = (struct pollfd){held ? -1 : out_fd, POLLIN, 0};
    fds[3] = (struct pollfd){held ? -1 : err_fd, POLLIN, 0};
    fds[4] = (struct pollfd){stdin_backlog.len ? stdin_fd : -1, POLLOUT, 0};
    for (int i = 0; i < MAX_CLIENTS; i++) {
      short events = 0;
      if (clients[i].fd >= 0 && client_readable(&clients[i])) events |= POLLIN;
      if (clients[i].out.len) events |= POLLOUT;
      /* A client held back with no events still reports its hang-up (POLLHUP: closed, not half-closed). */
      fds[5 + i] = (struct pollfd){clients[i].fd, events, 0};
    }
    int timeout = -1;
    if (opt_exec && !exec_started) {
      long long left = start_deadline - now_ms();
      if (left <= 0) break;
      timeout = (int)left;
    }
    if (exited) {
      /* The quiet time after the exit counts from when output flows again. */
      if (held) quiet_until = now_ms() + 200;
      long long left = quiet_until - now_ms();
      timeout = left > 0 ? (int)left : 0;
    }
    if (held && (timeout < 0 || timeout > 1000)) timeout = 1000; /* to see a stuck client in time */
    int r = poll(fds, 5 + MAX_CLIENTS, timeout);
    if (r < 0 && errno != EINTR) break;
    if (r < 0) continue;
    if (fds[0].revents & POLLIN) {
      struct signalfd_siginfo si;
      while (read(sfd, &si, sizeof si) == sizeof si) {
        if (si.ssi_signo == SIGTERM) continue; /* the container decides when it ends, not us */
        int st;
        pid_t p;
        while ((p = waitpid(-1, &st, WNOHANG)) > 0) {
          if (p == container_pid) {
            exited = 1;
            exit_code = WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
            quiet_until = now_ms() + 200;
            drain_until = now_ms() + EXEC_DRAIN_MS;
          }
        }
      }
    }
    if (fds[1].revents & POLLIN) {
      int c = accept4(attach_fd, NULL, NULL, SOCK_CLOEXEC | SOCK_NONBLOCK);
      int sndbuf = CLIENT_SNDBUF;
      if (c >= 0 && setsockopt(c, SOL_SOCKET, SO_SNDBUFFORCE, &sndbuf, sizeof sndbuf) < 0) setsockopt(c, SOL_SOCKET, SO_SNDBUF, &sndbuf, sizeof sndbuf);
      if (c >= 0) {
        int placed = 0;
        for (int i = 0; i < MAX_CLIENTS && !placed; i++)
          if (clients[i].fd < 0) { memset(&clients[i], 0, sizeof clients[i]); clients[i].fd = c; placed = 1; }
        if (!placed) close(c);
      }
    }
    int streams[2] = {out_fd, err_fd};
    for (int s = 0; s < 2; s++) {
      if (streams[s] < 0 || !(fds[2 + s].revents & (POLLIN | POLLHUP | POLLERR))) continue;
      /* Large reads from large pipes: fewer frames, log writes and wake-ups for a fast writer. */
      static char buf[256 * 1024];
      ssize_t got = read(streams[s], buf, sizeof buf);
      if (got > 0) {
        log_bytes(s == 0 ? &out_line : &err_line, buf, (size_t)got, 0);
        broadcast(s == 0 ? FR_STDOUT : FR_STDERR, buf, (size_t)got);
        if (exited) quiet_until = now_ms() + 200;
      } else if (got == 0 || (errno != EINTR && errno != EAGAIN)) {
        log_bytes(s == 0 ? &out_line : &err_line, NULL, 0, 1);
        if (s == 0) { if (out_fd != pty) close(out_fd); out_fd = -1; }
        else { close(err_fd); err_fd = -1; }
      }
    }
    if (fds[4].revents) stdin_flush();
    for (int i = 0; i < MAX_CLIENTS; i++) {
      short rev = fds[5 + i].revents;
      if (clients[i].fd < 0 || !rev) continue;
      size_t before = clients[i].out.len;
      if (clients[i].out.len && (rev & (POLLOUT | POLLHUP | POLLERR)) && backlog_flush(&clients[i].out, clients[i].fd) < 0) {
        drop_client(i, NULL);
        continue;
      }
      if (clients[i].out.len < before) clients[i].progress_ms = now_ms();
      if ((fds[5 + i].events & POLLIN) && (rev & (POLLIN | POLLHUP | POLLERR))) {
        const char *why;
        if (read_client(&clients[i], &why) < 0) drop_client(i, why);
        if (opt_exec && exec_started && pty >= 0 && out_fd < 0) {
          /* The exec's terminal came with its START. */
          out_fd = pty;
          if (opt_stdin) { stdin_fd = pty; fcntl(pty, F_SETFL, fcntl(pty, F_GETFL) | O_NONBLOCK); }
        }
        if (exec_failed && !exited) {
          exited = 1;
          exit_code = exec_failed_code;
          quiet_until = now_ms();
        }
      } else if (rev & (POLLHUP | POLLERR)) {
        drop_client(i, NULL); /* gone while held back: the stdin it had sent and we had not read goes with it */
      }
    }
    if (exited && ((out_fd < 0 && err_fd < 0) || now_ms() >= quiet_until)) break;
    /* An exec's pipes may be held open by what it left running (or by any process of the container): its end waits this long for them at most. */
    if (exited && opt_exec && now_ms() >= drain_until) break;
  }

  log_bytes(&out_line, NULL, 0, 1);
  log_bytes(&err_line, NULL, 0, 1);
  /* An exec never started has no exit to record. */
  if (!opt_exec || exec_started) write_exit_file(exit_code);
  /* No new clients; the socket's name may soon be a new monitor's (a restart). */
  close(attach_fd);
  snprintf(path, sizeof path, "%s/attach.sock", opt_state);
  unlink(path);
  stdin_end();
  /* The OCI runtime's state goes before anyone hears of the exit: once the runtime has recorded it, the
   * same container may be started again, and a late delete would then end the new run. */
  if (!opt_exec) {
    const char *dargv[8];
    int dn = 0;
    runtime_argv(dargv, &dn, "delete");
    dargv[dn++] = "--force";
    dargv[dn++] = opt_id;
    dargv[dn] = NULL;
    run_runtime((char *const *)dargv);
  }
  snprintf(path, sizeof path, "%s/shim.pid", opt_state);
  unlink(path);
  char code[16];
  snprintf(code, sizeof code, "%d", exit_code);
  broadcast(FR_EXIT, code, strlen(code));
  /* Clients that have everything go now: the runtime's own connection records the exit when it closes. */
  for (int i = 0; i < MAX_CLIENTS; i++) if (clients[i].fd >= 0 && clients[i].out.len == 0) drop_client(i, NULL);
  /* The others take the rest of their output; the monitor waits while some client takes any of it. */
  for (;;) {
    struct pollfd fds[MAX_CLIENTS];
    int waiting = 0;
    for (int i = 0; i < MAX_CLIENTS; i++) {
      fds[i] = (struct pollfd){clients[i].fd >= 0 ? clients[i].fd : -1, POLLOUT, 0};
      if (clients[i].fd >= 0) waiting++;
    }
    if (!waiting) break;
    int r = poll(fds, MAX_CLIENTS, EXIT_LINGER_MS);
    if (r < 0 && errno == EINTR) continue;
    if (r <= 0) break;
    for (int i = 0; i < MAX_CLIENTS; i++) {
      if (clients[i].fd < 0 || !fds[i].revents) continue;
      if (backlog_flush(&clients[i].out, clients[i].fd) < 0 || clients[i].out.len == 0) drop_client(i, NULL);
    }
  }
  for (int i = 0; i < MAX_CLIENTS; i++) if (clients[i].fd >= 0) drop_client(i, "it took none of its remaining output after the exit");
  return 0;
}
