// File operations confined to a root directory by the kernel. Every path
// handed in is resolved with openat2(RESOLVE_IN_ROOT | RESOLVE_NO_MAGICLINKS)
// from a descriptor of the root: symbolic links and `..` are followed as if
// the root were `/`, so no name an image chose can reach the host, whatever
// was swapped in a moment before. The last component of a path is acted on
// without being followed (the *at calls with the parent's descriptor).
//
// A Node-API addon: each function is synchronous and throws an Error whose
// `code` is the errno's name, as node:fs does.
#define _GNU_SOURCE
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <linux/openat2.h>
#include <math.h>
#include <node_api.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/sysmacros.h>
#include <sys/xattr.h>
#include <unistd.h>

#define IN_ROOT (RESOLVE_IN_ROOT | RESOLVE_NO_MAGICLINKS)
#define MAX_PATH 4096
#define MAX_XATTR 65536

static const char *errno_code(int e) {
  switch (e) {
  case ENOENT: return "ENOENT";
  case EEXIST: return "EEXIST";
  case ENOTDIR: return "ENOTDIR";
  case EISDIR: return "EISDIR";
  case ELOOP: return "ELOOP";
  case EXDEV: return "EXDEV";
  case EACCES: return "EACCES";
  case EPERM: return "EPERM";
  case ENOTEMPTY: return "ENOTEMPTY";
  case ENAMETOOLONG: return "ENAMETOOLONG";
  case EINVAL: return "EINVAL";
  case ENOSPC: return "ENOSPC";
  case EMLINK: return "EMLINK";
  case ENODATA: return "ENODATA";
  case EOPNOTSUPP: return "EOPNOTSUPP";
  case ENXIO: return "ENXIO";
  case EAGAIN: return "EAGAIN";
  case EBADF: return "EBADF";
  case ERANGE: return "ERANGE";
  case ENOSYS: return "ENOSYS";
  case EROFS: return "EROFS";
  default: return "EIO";
  }
}

static napi_value fail(napi_env env, int e, const char *op, const char *path) {
  char msg[MAX_PATH + 128];
  snprintf(msg, sizeof msg, "%s, %s '%s'", strerror(e), op, path ? path : "");
  napi_value code, text, err, num;
  napi_create_string_utf8(env, errno_code(e), NAPI_AUTO_LENGTH, &code);
  napi_create_string_utf8(env, msg, NAPI_AUTO_LENGTH, &text);
  napi_create_error(env, code, text, &err);
  napi_create_int32(env, -e, &num);
  napi_set_named_property(env, err, "errno", num);
  napi_throw(env, err);
  return NULL;
}

static int arg_int(napi_env env, napi_value v, int64_t *out) {
  return napi_get_value_int64(env, v, out) == napi_ok ? 0 : -1;
}

/** A string argument into `buf`; -1 (with a JS exception) when it is not a string or too long. */
static int arg_str(napi_env env, napi_value v, char *buf, size_t cap) {
  size_t len = 0;
  // Its whole length first: a copy into a short buffer stops before a
  // character that does not fit, so a longer name could pass as its prefix.
  if (napi_get_value_string_utf8(env, v, NULL, 0, &len) != napi_ok) {
    napi_throw_type_error(env, NULL, "a string was expected");
    return -1;
  }
  if (len >= cap) {
    fail(env, ENAMETOOLONG, "path", "");
    return -1;
  }
  napi_get_value_string_utf8(env, v, buf, cap, &len);
  if (strlen(buf) != len) {
    fail(env, EINVAL, "path with a NUL byte", "");
    return -1;
  }
  return 0;
}

static int open_in_root(int root, const char *path, int flags, mode_t mode) {
  struct open_how how = { .flags = (uint64_t)(flags | O_CLOEXEC), .mode = (flags & (O_CREAT | O_TMPFILE)) ? mode : 0, .resolve = IN_ROOT };
  const char *p = *path ? path : ".";
  for (int tries = 0;; tries++) {
    long fd = syscall(SYS_openat2, root, p, &how, sizeof how);
    // EAGAIN: a rename elsewhere raced the `..` check; the kernel asks for a retry.
    if (fd < 0 && errno == EAGAIN && tries < 64) continue;
    return (int)fd;
  }
}

/**
 * Splits `path` at its last '/', opens the parent in the root and leaves the
 * last component in `base`. The last component may not be empty, `.` or `..`.
 */
static int open_parent(int root, char *path, const char **base) {
  char *slash = strrchr(path, '/');
  const char *last = slash ? slash + 1 : path;
  if (!*last || !strcmp(last, ".") || !strcmp(last, "..")) {
    errno = EINVAL;
    return -1;
  }
  *base = last;
  if (!slash) return open_in_root(root, ".", O_PATH | O_DIRECTORY, 0);
  *slash = '\0';
  int fd = open_in_root(root, path, O_PATH | O_DIRECTORY, 0);
  *slash = '/';
  return fd;
}

#define ARGS(n)                                                   \
  size_t argc = n;                                                \
  napi_value argv[n];                                             \
  napi_get_cb_info(env, info, &argc, argv, NULL, NULL);           \
  if (argc < n) {                                                 \
    napi_throw_type_error(env, NULL, "too few arguments");        \
    return NULL;                                                  \
  }

static napi_value undefined(napi_env env) {
  napi_value u;
  napi_get_undefined(env, &u);
  return u;
}

static napi_value number(napi_env env, int64_t n) {
  napi_value v;
  napi_create_int64(env, n, &v);
  return v;
}

// openRoot(hostPath): a descriptor of the root directory (trusted host path).
static napi_value js_open_root(napi_env env, napi_callback_info info) {
  ARGS(1);
  char path[MAX_PATH];
  if (arg_str(env, argv[0], path, sizeof path)) return NULL;
  int fd = open(path, O_PATH | O_DIRECTORY | O_CLOEXEC);
  if (fd < 0) return fail(env, errno, "open", path);
  return number(env, fd);
}

// open(root, path, flags, mode): a descriptor of the file in the root.
static napi_value js_open(napi_env env, napi_callback_info info) {
  ARGS(4);
  int64_t root, flags, mode;
  char path[MAX_PATH];
  if (arg_int(env, argv[0], &root) || arg_str(env, argv[1], path, sizeof path) || arg_int(env, argv[2], &flags) || arg_int(env, argv[3], &mode)) return NULL;
  int fd = open_in_root((int)root, path, (int)flags, (mode_t)mode);
  if (fd < 0) return fail(env, errno, "open", path);
  return number(env, fd);
}

// The calls below act on the last component, not following it.
#define WITH_PARENT(op, call)                                     \
  const char *base;                                               \
  int dir = open_parent((int)root, path, &base);                  \
  if (dir < 0) return fail(env, errno, op, path);                 \
  int rc = (call);                                                \
  int e = errno;                                                  \
  close(dir);                                                     \
  if (rc < 0) return fail(env, e, op, path);

// mkdir(root, path, mode)
static napi_value js_mkdir(napi_env env, napi_callback_info info) {
  ARGS(3);
  int64_t root, mode;
  char path[MAX_PATH];
  if (arg_int(env, argv[0], &root) || arg_str(env, argv[1], path, sizeof path) || arg_int(env, argv[2], &mode)) return NULL;
  WITH_PARENT("mkdir", mkdirat(dir, base, (mode_t)mode));
  return undefined(env);
}

// symlink(root, target, path): the target is stored as given, never followed here.
static napi_value js_symlink(napi_env env, napi_callback_info info) {
  ARGS(3);
  int64_t root;
  char target[MAX_PATH], path[MAX_PATH];
  if (arg_int(env, argv[0], &root) || arg_str(env, argv[1], target, sizeof target) || arg_str(env, argv[2], path, sizeof path)) return NULL;
  WITH_PARENT("symlink", symlinkat(target, dir, base));
  return undefined(env);
}

// link(root, existing, path): a hard link; both names resolved in the root, neither last component followed.
static napi_value js_link(napi_env env, napi_callback_info info) {
  ARGS(3);
  int64_t root;
  char existing[MAX_PATH], path[MAX_PATH];
  if (arg_int(env, argv[0], &root) || arg_str(env, argv[1], existing, sizeof existing) || arg_str(env, argv[2], path, sizeof path)) return NULL;
  const char *from_base;
  int from = open_parent((int)root, existing, &from_base);
  if (from < 0) return fail(env, errno, "link", existing);
  const char *base;
  int dir = open_parent((int)root, path, &base);
  if (dir < 0) {
    int e = errno;
    close(from);
    return fail(env, e, "link", path);
  }
  int rc = linkat(from, from_base, dir, base, 0);
  int e = errno;
  close(from);
  close(dir);
  if (rc < 0) return fail(env, e, "link", path);
  return undefined(env);
}

// mknod(root, path, mode, major, minor): mode carries the file type (S_IFCHR, S_IFBLK, S_IFIFO).
static napi_value js_mknod(napi_env env, napi_callback_info info) {
  ARGS(5);
  int64_t root, mode, major, minor;
  char path[MAX_PATH];
  if (arg_int(env, argv[0], &root) || arg_str(env, argv[1], path, sizeof path) || arg_int(env, argv[2], &mode) || arg_int(env, argv[3], &major) || arg_int(env, argv[4], &minor)) return NULL;
  WITH_PARENT("mknod", mknodat(dir, base, (mode_t)mode, makedev((unsigned)major, (unsigned)minor)));
  return undefined(env);
}

// lchown(root, path, uid, gid)
static napi_value js_lchown(napi_env env, napi_callback_info info) {
  ARGS(4);
  int64_t root, uid, gid;
  char path[MAX_PATH];
  if (arg_int(env, argv[0], &root) || arg_str(env, argv[1], path, sizeof path) || arg_int(env, argv[2], &uid) || arg_int(env, argv[3], &gid)) return NULL;
  WITH_PARENT("lchown", fchownat(dir, base, (uid_t)uid, (gid_t)gid, AT_SYMLINK_NOFOLLOW));
  return undefined(env);
}

/** A descriptor of the last component itself (O_PATH, not followed), and its type. */
static int open_last(int dir, const char *base, struct stat *st) {
  int fd = openat(dir, base, O_PATH | O_NOFOLLOW | O_CLOEXEC);
  if (fd < 0) return -1;
  if (fstat(fd, st) < 0) {
    int e = errno;
    close(fd);
    errno = e;
    return -1;
  }
  return fd;
}

/** chmod of what `fd` (O_PATH) names: through its /proc entry, which names exactly that inode. */
static int chmod_fd(int fd, mode_t mode) {
  char proc[64];
  snprintf(proc, sizeof proc, "/proc/self/fd/%d", fd);
  return chmod(proc, mode);
}

// chmod(root, path, mode): the mode of the entry itself (a symbolic link has none: left alone).
// Called after lchown, which clears the setuid and setgid bits.
static napi_value js_chmod(napi_env env, napi_callback_info info) {
  ARGS(3);
  int64_t root, mode;
  char path[MAX_PATH];
  if (arg_int(env, argv[0], &root) || arg_str(env, argv[1], path, sizeof path) || arg_int(env, argv[2], &mode)) return NULL;
  struct stat st;
  const char *base;
  int dir = open_parent((int)root, path, &base);
  if (dir < 0) return fail(env, errno, "chmod", path);
  int fd = open_last(dir, base, &st);
  int e = errno;
  close(dir);
  if (fd < 0) return fail(env, e, "chmod", path);
  int rc = S_ISLNK(st.st_mode) ? 0 : chmod_fd(fd, (mode_t)mode);
  e = errno;
  close(fd);
  if (rc < 0) return fail(env, e, "chmod", path);
  return undefined(env);
}

// utimes(root, path, atimeMs, mtimeMs): of the entry itself.
static napi_value js_utimes(napi_env env, napi_callback_info info) {
  ARGS(4);
  int64_t root;
  double atime, mtime;
  char path[MAX_PATH];
  if (arg_int(env, argv[0], &root) || arg_str(env, argv[1], path, sizeof path)) return NULL;
  if (napi_get_value_double(env, argv[2], &atime) != napi_ok || napi_get_value_double(env, argv[3], &mtime) != napi_ok || !isfinite(atime) || !isfinite(mtime)) {
    napi_throw_type_error(env, NULL, "finite times were expected");
    return NULL;
  }
  struct timespec ts[2];
  ts[0].tv_sec = (time_t)(atime / 1000);
  ts[0].tv_nsec = (long)((atime - (double)ts[0].tv_sec * 1000) * 1e6);
  ts[1].tv_sec = (time_t)(mtime / 1000);
  ts[1].tv_nsec = (long)((mtime - (double)ts[1].tv_sec * 1000) * 1e6);
  for (int i = 0; i < 2; i++)
    if (ts[i].tv_nsec < 0 || ts[i].tv_nsec > 999999999) ts[i].tv_nsec = 0;
  WITH_PARENT("utimes", utimensat(dir, base, ts, AT_SYMLINK_NOFOLLOW));
  return undefined(env);
}

// setxattr(root, path, name, value): on the entry itself.
static napi_value js_setxattr(napi_env env, napi_callback_info info) {
  ARGS(4);
  int64_t root;
  char path[MAX_PATH], name[256];
  void *data;
  size_t len;
  if (arg_int(env, argv[0], &root) || arg_str(env, argv[1], path, sizeof path) || arg_str(env, argv[2], name, sizeof name)) return NULL;
  if (napi_get_buffer_info(env, argv[3], &data, &len) != napi_ok) {
    napi_throw_type_error(env, NULL, "a Buffer was expected");
    return NULL;
  }
  char proc[MAX_PATH + 64];
  if (!*path) {
    // The root itself (an opaque marker at the top of a layer).
    snprintf(proc, sizeof proc, "/proc/self/fd/%d", (int)root);
    if (setxattr(proc, name, data, len, 0) < 0) return fail(env, errno, "setxattr", path);
    return undefined(env);
  }
  const char *base;
  int dir = open_parent((int)root, path, &base);
  if (dir < 0) return fail(env, errno, "setxattr", path);
  snprintf(proc, sizeof proc, "/proc/self/fd/%d/%s", dir, base);
  // The parent's /proc entry names exactly that directory; the last component is not followed.
  int rc = lsetxattr(proc, name, data, len, 0);
  int e = errno;
  close(dir);
  if (rc < 0) return fail(env, e, "setxattr", path);
  return undefined(env);
}

// getxattr(hostPath, name): the attribute's value of a trusted host path (not followed), or null.
static napi_value js_getxattr(napi_env env, napi_callback_info info) {
  ARGS(2);
  char path[MAX_PATH], name[256];
  if (arg_str(env, argv[0], path, sizeof path) || arg_str(env, argv[1], name, sizeof name)) return NULL;
  char value[MAX_XATTR];
  ssize_t n = lgetxattr(path, name, value, sizeof value);
  if (n < 0) {
    if (errno == ENODATA || errno == EOPNOTSUPP) {
      napi_value nul;
      napi_get_null(env, &nul);
      return nul;
    }
    return fail(env, errno, "getxattr", path);
  }
  napi_value buf;
  void *out;
  napi_create_buffer_copy(env, (size_t)n, value, &out, &buf);
  return buf;
}

/**
 * How deep remove_below descends before it lifts a directory up to the top
 * of the tree instead: a tree is as deep as its maker chose (a container can
 * nest directories far past PATH_MAX), and neither the C stack nor the
 * descriptors held open should follow it down.
 */
#define LIFT_DEPTH 128

/**
 * Removes everything below the directory `fd` (not following links; closes
 * `fd`). A directory deeper than LIFT_DEPTH is renamed into `top` (the
 * tree's own top directory) instead, and `*lifted` is set: another pass over
 * `top` removes it.
 */
static int remove_below(int fd, int depth, int top, int *lifted) {
  DIR *d = fdopendir(fd);
  if (!d) {
    int e = errno;
    close(fd);
    errno = e;
    return -1;
  }
  static unsigned long serial;
  struct dirent *ent;
  int rc = 0;
  while ((ent = readdir(d)) != NULL) {
    if (!strcmp(ent->d_name, ".") || !strcmp(ent->d_name, "..")) continue;
    if (unlinkat(dirfd(d), ent->d_name, 0) == 0) continue;
    if (errno != EISDIR) {
      rc = -1;
      break;
    }
    if (depth >= LIFT_DEPTH) {
      char name[64];
      int moved;
      do {
        snprintf(name, sizeof name, ".removing-%d-%lu", (int)getpid(), ++serial);
        moved = renameat2(dirfd(d), ent->d_name, top, name, RENAME_NOREPLACE);
      } while (moved < 0 && errno == EEXIST);
      if (moved < 0) {
        rc = -1;
        break;
      }
      *lifted = 1;
      continue;
    }
    int child = openat(dirfd(d), ent->d_name, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    if (child < 0 || remove_below(child, depth + 1, top, lifted) < 0 || unlinkat(dirfd(d), ent->d_name, AT_REMOVEDIR) < 0) {
      rc = -1;
      break;
    }
  }
  int e = errno;
  closedir(d);
  errno = e;
  return rc;
}

/** Empties the directory `top` (passes until nothing was lifted into it). */
static int remove_all_below(int top) {
  int lifted;
  do {
    lifted = 0;
    // A new open of the directory each pass: a fresh position, from the start.
    int fd = openat(top, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0 || remove_below(fd, 0, top, &lifted) < 0) return -1;
  } while (lifted);
  return 0;
}

// remove(root, path): whatever is there, a directory with everything below it; nothing there is not an error.
static napi_value js_remove(napi_env env, napi_callback_info info) {
  ARGS(2);
  int64_t root;
  char path[MAX_PATH];
  if (arg_int(env, argv[0], &root) || arg_str(env, argv[1], path, sizeof path)) return NULL;
  const char *base;
  int dir = open_parent((int)root, path, &base);
  if (dir < 0) {
    if (errno == ENOENT) return undefined(env);
    return fail(env, errno, "remove", path);
  }
  int rc = unlinkat(dir, base, 0);
  if (rc < 0 && errno == EISDIR) {
    int top = openat(dir, base, O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);
    rc = top < 0 ? -1 : remove_all_below(top);
    int e = errno;
    if (top >= 0) close(top);
    errno = e;
    if (rc == 0) rc = unlinkat(dir, base, AT_REMOVEDIR);
  }
  int e = errno;
  close(dir);
  if (rc < 0 && e != ENOENT) return fail(env, e, "remove", path);
  return undefined(env);
}

#define EXPORT(name, fn)                                                   \
  do {                                                                     \
    napi_value f;                                                          \
    napi_create_function(env, name, NAPI_AUTO_LENGTH, fn, NULL, &f);       \
    napi_set_named_property(env, exports, name, f);                        \
  } while (0)

static napi_value init(napi_env env, napi_value exports) {
  EXPORT("openRoot", js_open_root);
  EXPORT("open", js_open);
  EXPORT("mkdir", js_mkdir);
  EXPORT("symlink", js_symlink);
  EXPORT("link", js_link);
  EXPORT("mknod", js_mknod);
  EXPORT("lchown", js_lchown);
  EXPORT("chmod", js_chmod);
  EXPORT("utimes", js_utimes);
  EXPORT("setxattr", js_setxattr);
  EXPORT("getxattr", js_getxattr);
  EXPORT("remove", js_remove);
  return exports;
}

NAPI_MODULE(NODE_GYP_MODULE_NAME, init)
