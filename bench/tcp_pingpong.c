// SPDX-License-Identifier: GPL-2.0-only
/*
 * Userspace TCP baseline for the ICS benchmark, run between the same two
 * guests: "server PORT" echoes every message back; "client HOST PORT SIZE
 * COUNT" sends COUNT messages of SIZE bytes, waits for each echo, and
 * prints the elapsed nanoseconds.  SIZE 0 sends a 1-byte token (the
 * latency case, like a null RPC).
 */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

static int xfer(int fd, char *buf, size_t len, int out)
{
	while (len) {
		ssize_t n = out ? write(fd, buf, len) : read(fd, buf, len);

		if (n <= 0)
			return -1;
		buf += n;
		len -= n;
	}
	return 0;
}

static void nodelay(int fd)
{
	int one = 1;

	setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
}

static int serve(int port)
{
	struct sockaddr_in sin = { .sin_family = AF_INET,
				   .sin_port = htons(port) };
	int one = 1, lfd = socket(AF_INET, SOCK_STREAM, 0);
	static char buf[1 << 20];
	unsigned int size;
	int fd;

	setsockopt(lfd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	if (bind(lfd, (struct sockaddr *)&sin, sizeof(sin)) || listen(lfd, 4))
		return 1;
	printf("listening\n");
	fflush(stdout);
	for (;;) {
		fd = accept(lfd, NULL, NULL);
		if (fd < 0)
			continue;
		nodelay(fd);
		/* Each message: 4-byte size, then the payload; echoed back. */
		while (!xfer(fd, (char *)&size, 4, 0) && size <= sizeof(buf) &&
		       !xfer(fd, buf, size, 0) && !xfer(fd, (char *)&size, 4, 1) &&
		       !xfer(fd, buf, size, 1))
			;
		close(fd);
	}
}

static long long now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

static int client(const char *host, int port, unsigned int size, long count)
{
	struct sockaddr_in sin = { .sin_family = AF_INET,
				   .sin_port = htons(port) };
	int fd = socket(AF_INET, SOCK_STREAM, 0);
	static char buf[1 << 20];
	unsigned int len = size ? size : 1, got;
	long long start;
	long i;

	if (len > sizeof(buf) || inet_pton(AF_INET, host, &sin.sin_addr) != 1)
		return 2;
	if (connect(fd, (struct sockaddr *)&sin, sizeof(sin)))
		return 1;
	nodelay(fd);
	memset(buf, 7, len);
	start = now_ns();
	for (i = 0; i < count; i++) {
		if (xfer(fd, (char *)&len, 4, 1) || xfer(fd, buf, len, 1) ||
		    xfer(fd, (char *)&got, 4, 0) || got != len ||
		    xfer(fd, buf, len, 0))
			return 1;
	}
	printf("%lld\n", now_ns() - start);
	close(fd);
	return 0;
}

int main(int argc, char **argv)
{
	if (argc == 3 && !strcmp(argv[1], "server"))
		return serve(atoi(argv[2]));
	if (argc == 6 && !strcmp(argv[1], "client"))
		return client(argv[2], atoi(argv[3]), strtoul(argv[4], NULL, 0),
			      atol(argv[5]));
	fprintf(stderr, "usage: %s server PORT | client HOST PORT SIZE COUNT\n",
		argv[0]);
	return 2;
}
