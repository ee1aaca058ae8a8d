/*
 * A disk that fails, for tests: an LD_PRELOAD library that makes writes and syncs of files
 * under $MAJLIS_FAULT_DIR fail with EIO while the file $MAJLIS_FAULT_FLAG exists (reads
 * too when that file contains "r"). Everything else passes through to libc. Built by
 * tests/tests/disk.rs with the system C compiler; used only by tests.
 */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/types.h>
#include <sys/uio.h>
#include <unistd.h>

/* 'w': writes fail; 'r': reads fail too; 0: healthy. */
static char mode_for(int fd, char want) {
    const char *flag = getenv("MAJLIS_FAULT_FLAG");
    const char *dir = getenv("MAJLIS_FAULT_DIR");
    if (!flag || !dir) return 0;
    int f = open(flag, O_RDONLY | O_CLOEXEC);
    if (f < 0) return 0;
    char c = 0;
    ssize_t (*real_read)(int, void *, size_t) = dlsym(RTLD_NEXT, "read");
    if (real_read(f, &c, 1) != 1) c = 0;
    close(f);
    if (want == 'r' && c != 'r') return 0;
    char link[64], path[4096];
    snprintf(link, sizeof link, "/proc/self/fd/%d", fd);
    ssize_t n = readlink(link, path, sizeof path - 1);
    if (n <= 0) return 0;
    path[n] = 0;
    size_t len = strlen(dir);
    return strncmp(path, dir, len) == 0 && path[len] == '/' ? want : 0;
}

#define FAIL_IF(fd, want)            \
    do {                             \
        if (mode_for((fd), (want))) { \
            errno = EIO;             \
            return -1;               \
        }                            \
    } while (0)

#define REAL(ret, name, ...) \
    static ret (*real)(__VA_ARGS__); \
    if (!real) real = dlsym(RTLD_NEXT, name)

ssize_t write(int fd, const void *b, size_t n) {
    REAL(ssize_t, "write", int, const void *, size_t);
    FAIL_IF(fd, 'w');
    return real(fd, b, n);
}
ssize_t pwrite(int fd, const void *b, size_t n, off_t o) {
    REAL(ssize_t, "pwrite", int, const void *, size_t, off_t);
    FAIL_IF(fd, 'w');
    return real(fd, b, n, o);
}
ssize_t pwrite64(int fd, const void *b, size_t n, off_t o) {
    REAL(ssize_t, "pwrite64", int, const void *, size_t, off_t);
    FAIL_IF(fd, 'w');
    return real(fd, b, n, o);
}
ssize_t writev(int fd, const struct iovec *v, int c) {
    REAL(ssize_t, "writev", int, const struct iovec *, int);
    FAIL_IF(fd, 'w');
    return real(fd, v, c);
}
int fsync(int fd) {
    REAL(int, "fsync", int);
    FAIL_IF(fd, 'w');
    return real(fd);
}
int fdatasync(int fd) {
    REAL(int, "fdatasync", int);
    FAIL_IF(fd, 'w');
    return real(fd);
}
int sync_file_range(int fd, off_t o, off_t n, unsigned int f) {
    REAL(int, "sync_file_range", int, off_t, off_t, unsigned int);
    FAIL_IF(fd, 'w');
    return real(fd, o, n, f);
}
ssize_t read(int fd, void *b, size_t n) {
    REAL(ssize_t, "read", int, void *, size_t);
    FAIL_IF(fd, 'r');
    return real(fd, b, n);
}
ssize_t pread(int fd, void *b, size_t n, off_t o) {
    REAL(ssize_t, "pread", int, void *, size_t, off_t);
    FAIL_IF(fd, 'r');
    return real(fd, b, n, o);
}
ssize_t pread64(int fd, void *b, size_t n, off_t o) {
    REAL(ssize_t, "pread64", int, void *, size_t, off_t);
    FAIL_IF(fd, 'r');
    return real(fd, b, n, o);
}
