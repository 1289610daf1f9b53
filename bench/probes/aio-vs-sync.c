/*
 * aio-vs-sync: an uncontended acquire's six I/Os on a 16-host area (an
 * 8704-byte read then a 512-byte write, three times) on one O_DIRECT|O_DSYNC
 * file, done synchronously (pread/pwrite) and through Linux AIO completed on
 * an eventfd (io_submit, epoll_wait, io_getevents), which is how sanlock
 * issues them. Prints p50 and p90 of each, and of AIO reads and writes alone.
 * Not part of the build; docs/performance.md says what it showed here.
 *
 *   gcc -O2 -Wall -o /tmp/aio-vs-sync bench/probes/aio-vs-sync.c
 *   dd if=/dev/zero of=/tmp/aio.img bs=1M count=1 && /tmp/aio-vs-sync /tmp/aio.img
 */
#define _GNU_SOURCE
#include <fcntl.h>
#include <linux/aio_abi.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

enum { ROUNDS = 1000, READ_BYTES = 8704, WRITE_BYTES = 512 };

static double now_ms(void) {
  struct timespec t;
  clock_gettime(CLOCK_MONOTONIC, &t);
  return t.tv_sec * 1e3 + t.tv_nsec / 1e6;
}

static int compare(const void *a, const void *b) {
  double x = *(const double *)a, y = *(const double *)b;
  return x < y ? -1 : x > y;
}

static void report(const char *what, double *samples) {
  qsort(samples, ROUNDS, sizeof *samples, compare);
  printf("%-28s p50 %.3f ms  p90 %.3f ms\n", what, samples[ROUNDS / 2], samples[ROUNDS * 9 / 10]);
}

static void die(const char *what) {
  perror(what);
  exit(1);
}

/* One I/O through AIO: submit, wait for the eventfd, reap the completion. */
static void aio_io(aio_context_t ctx, int fd, int efd, int epoll, int write, void *buf) {
  struct iocb cb;
  memset(&cb, 0, sizeof cb);
  cb.aio_fildes = fd;
  cb.aio_lio_opcode = write ? IOCB_CMD_PWRITE : IOCB_CMD_PREAD;
  cb.aio_buf = (uint64_t)(uintptr_t)buf;
  cb.aio_nbytes = write ? WRITE_BYTES : READ_BYTES;
  cb.aio_flags = IOCB_FLAG_RESFD;
  cb.aio_resfd = efd;
  struct iocb *list[1] = {&cb};
  if (syscall(SYS_io_submit, ctx, 1, list) != 1) die("io_submit");
  struct epoll_event ready;
  if (epoll_wait(epoll, &ready, 1, -1) != 1) die("epoll_wait");
  uint64_t count;
  if (read(efd, &count, sizeof count) != sizeof count) die("eventfd read");
  struct io_event done;
  struct timespec zero = {0, 0};
  if (syscall(SYS_io_getevents, ctx, 1, 1, &done, &zero) != 1) die("io_getevents");
  if (done.res != (int64_t)cb.aio_nbytes) die("short or failed AIO");
}

int main(int argc, char **argv) {
  if (argc != 2) {
    fprintf(stderr, "usage: aio-vs-sync FILE (at least 8704 bytes, on the storage to measure)\n");
    return 2;
  }
  int fd = open(argv[1], O_RDWR | O_DIRECT | O_DSYNC);
  if (fd < 0) die("open");
  void *buf = NULL;
  if (posix_memalign(&buf, 4096, 65536) != 0) die("posix_memalign");
  memset(buf, 0, 65536);
  aio_context_t ctx = 0;
  if (syscall(SYS_io_setup, 8, &ctx) != 0) die("io_setup");
  int efd = eventfd(0, EFD_NONBLOCK);
  int epoll = epoll_create1(0);
  struct epoll_event interest = {.events = EPOLLIN};
  if (efd < 0 || epoll < 0 || epoll_ctl(epoll, EPOLL_CTL_ADD, efd, &interest) != 0) die("eventfd/epoll");

  static double sync_acquire[ROUNDS], aio_acquire[ROUNDS], aio_read[ROUNDS], aio_write[ROUNDS];
  for (int i = 0; i < ROUNDS; i++) {
    double start = now_ms();
    for (int phase = 0; phase < 3; phase++) {
      if (pread(fd, buf, READ_BYTES, 0) != READ_BYTES) die("pread");
      if (pwrite(fd, buf, WRITE_BYTES, 0) != WRITE_BYTES) die("pwrite");
    }
    sync_acquire[i] = now_ms() - start;
    usleep(200);
  }
  for (int i = 0; i < ROUNDS; i++) {
    double start = now_ms();
    for (int phase = 0; phase < 3; phase++) {
      double read_start = now_ms();
      aio_io(ctx, fd, efd, epoll, 0, buf);
      double write_start = now_ms();
      aio_io(ctx, fd, efd, epoll, 1, buf);
      if (phase == 0) {
        aio_read[i] = write_start - read_start;
        aio_write[i] = now_ms() - write_start;
      }
    }
    aio_acquire[i] = now_ms() - start;
    usleep(200);
  }
  report("sync: 3 x (read + write)", sync_acquire);
  report("aio: 3 x (read + write)", aio_acquire);
  report("aio: one 8704-byte read", aio_read);
  report("aio: one 512-byte write", aio_write);
  return 0;
}
