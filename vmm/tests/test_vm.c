/*
 * The VM's life without KVM: the state machine, the main loop (stop eventfd, signalfd, added
 * sources), the stop signals' statuses, failures reported from other threads, and the teardown
 * from whatever point setup reached (devices, loop, zone files undone or kept).
 *
 * Every test that waits in the loop runs under alarm(): a wake-up that never comes kills the
 * program (SIGALRM) instead of hanging `make unit`.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <pthread.h>
#include <signal.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "arch/x86/platform.h"
#include "util.h"
#include "vm.h"
#include "tests/devices_vm.h"

#define WATCHDOG_SECONDS 20

static struct vm test_vm;
static char tmpdir[64];

static int watchdog_on(void **state)
{
	(void)state;
	alarm(WATCHDOG_SECONDS);
	return 0;
}

static int watchdog_off(void **state)
{
	char err[256];

	(void)state;
	alarm(0);
	/* A test that failed half-way leaves its loop open: close it for the next one. */
	return loop__exit(&test_vm.loop, err, sizeof(err));
}

/* A VM as main has it before setup: nothing open, the clock started. */
static struct vm *fresh_vm(void)
{
	struct vm *vm = &test_vm;

	vm__init(vm);
	if (clock_gettime(CLOCK_MONOTONIC, &vm->start) < 0)
		fail_msg("clock_gettime: %s", strerror(errno));
	return vm;
}

static struct vm *vm_with_loop(void)
{
	struct vm *vm = fresh_vm();
	char err[256];

	if (loop__init(&vm->loop, err, sizeof(err)) < 0)
		fail_msg("loop__init: %s", err);
	return vm;
}

static double now_ms(void)
{
	struct timespec t;

	if (clock_gettime(CLOCK_MONOTONIC, &t) < 0)
		fail_msg("clock_gettime: %s", strerror(errno));
	return (double)t.tv_sec * 1e3 + (double)t.tv_nsec / 1e6;
}

static void sleep_ms(long ms)
{
	struct timespec t = { .tv_sec = ms / 1000, .tv_nsec = (ms % 1000) * 1000000L };

	while (nanosleep(&t, &t) < 0 && errno == EINTR)
		;
}

/* ---- stderr capture: what memvisor prints is part of the contract ---- */

struct capture {
	int saved;
	FILE *file;
};

static void capture_begin(struct capture *c)
{
	c->file = tmpfile();
	assert_non_null(c->file);
	c->saved = dup(STDERR_FILENO);
	assert_true(c->saved >= 0);
	assert_true(dup2(fileno(c->file), STDERR_FILENO) >= 0);
}

static void capture_end(struct capture *c, char *out, size_t outlen)
{
	size_t n;

	assert_true(dup2(c->saved, STDERR_FILENO) >= 0);
	assert_int_equal(close(c->saved), 0);
	rewind(c->file);
	n = fread(out, 1, outlen - 1, c->file);
	out[n] = '\0';
	assert_int_equal(fclose(c->file), 0);
}

/* ---- the state machine ---- */

static void test_state_table(void **state)
{
	/* allowed[from][to], in enum order: created, running, stopping, stopped */
	static const bool allowed[4][4] = {
		{ false, true, true, false },
		{ false, false, true, false },
		{ false, false, false, true },
		{ false, false, false, false },
	};

	(void)state;
	for (int from = VM_CREATED; from <= VM_STOPPED; from++)
		for (int to = VM_CREATED; to <= VM_STOPPED; to++)
			if (vm_state__allowed(from, to) != allowed[from][to])
				fail_msg("%s -> %s: allowed is %d", vm_state__name(from),
					 vm_state__name(to), vm_state__allowed(from, to));
	assert_string_equal(vm_state__name(VM_CREATED), "created");
	assert_string_equal(vm_state__name(VM_STOPPED), "stopped");
}

static void test_state_transitions(void **state)
{
	struct vm *vm = fresh_vm();
	char err[256];

	(void)state;
	assert_int_equal(vm__state(vm), VM_CREATED);
	assert_false(vm__stopping(vm));

	/* Refused changes leave everything as it was and say which change was refused. */
	assert_int_equal(vm__set_state(vm, VM_STOPPED, err, sizeof(err)), -1);
	assert_string_equal(err, "internal error: VM state created -> stopped");
	assert_int_equal(vm__set_state(vm, VM_STOPPING, err, sizeof(err)), -1);
	assert_string_equal(err, "internal error: only vm__stop enters VM state stopping");
	assert_int_equal(vm__state(vm), VM_CREATED);

	assert_int_equal(vm__set_state(vm, VM_RUNNING, err, sizeof(err)), 0);
	assert_int_equal(vm__state(vm), VM_RUNNING);
	assert_int_equal(vm__set_state(vm, VM_RUNNING, err, sizeof(err)), -1);
	assert_string_equal(err, "internal error: VM state running -> running");
	assert_int_equal(vm__set_state(vm, VM_STOPPED, err, sizeof(err)), -1);

	/* The first stop wins: its status stays whatever comes after. */
	assert_true(vm__stop(vm, 5));
	assert_int_equal(vm__state(vm), VM_STOPPING);
	assert_true(vm__stopping(vm));
	assert_int_equal(vm__exit_status(vm), 5);
	assert_false(vm__stop(vm, 9));
	assert_int_equal(vm__exit_status(vm), 5);
	assert_int_equal(vm__set_state(vm, VM_RUNNING, err, sizeof(err)), -1);
	assert_string_equal(err, "internal error: VM state stopping -> running");

	assert_int_equal(vm__set_state(vm, VM_STOPPED, err, sizeof(err)), 0);
	assert_int_equal(vm__state(vm), VM_STOPPED);
	assert_true(vm__stopping(vm));
	assert_false(vm__stop(vm, 7));
	assert_int_equal(vm__exit_status(vm), 5);
	assert_int_equal(vm__set_state(vm, VM_STOPPED, err, sizeof(err)), -1);
	assert_int_equal(vm__set_state(vm, VM_CREATED, err, sizeof(err)), -1);
	assert_string_equal(err, "internal error: VM state stopped -> created");
}

/* A stop before the vCPUs run (a signal during setup, a setup failure): they never start. */
static void test_stop_before_start(void **state)
{
	struct vm *vm = fresh_vm();
	char err[256];

	(void)state;
	assert_true(vm__stop(vm, 0));
	assert_int_equal(vm__state(vm), VM_STOPPING);
	assert_int_equal(vm__exit_status(vm), 0);
	assert_int_equal(vm__set_state(vm, VM_RUNNING, err, sizeof(err)), -1);

	/* The status is what exit(3) keeps of it: the low 8 bits. */
	vm = fresh_vm();
	assert_true(vm__stop(vm, 256 + EXIT_VMM_FAILURE));
	assert_int_equal(vm__exit_status(vm), EXIT_VMM_FAILURE);
	vm = fresh_vm();
	assert_true(vm__stop(vm, 255));
	assert_int_equal(vm__exit_status(vm), 255);
}

#define RACERS 8

struct racer {
	struct vm *vm;
	pthread_barrier_t *go;
	int status;
	bool won;
};

static void *race_stop(void *arg)
{
	struct racer *r = arg;

	pthread_barrier_wait(r->go);
	r->won = vm__stop(r->vm, r->status);
	return NULL;
}

/* Many threads stop at once: exactly one wins, and the status is the winner's. */
static void test_stop_race(void **state)
{
	struct racer racers[RACERS];
	pthread_t threads[RACERS];
	pthread_barrier_t go;

	(void)state;
	for (int round = 0; round < 50; round++) {
		struct vm *vm = vm_with_loop();
		char err[256];
		int winners = 0, status = -1;

		assert_int_equal(vm__set_state(vm, VM_RUNNING, err, sizeof(err)), 0);
		assert_int_equal(pthread_barrier_init(&go, NULL, RACERS), 0);
		for (int i = 0; i < RACERS; i++) {
			racers[i] = (struct racer){ .vm = vm, .go = &go, .status = 10 + i };
			assert_int_equal(pthread_create(&threads[i], NULL, race_stop, &racers[i]), 0);
		}
		for (int i = 0; i < RACERS; i++) {
			assert_int_equal(pthread_join(threads[i], NULL), 0);
			if (racers[i].won) {
				winners++;
				status = racers[i].status;
			}
		}
		assert_int_equal(pthread_barrier_destroy(&go), 0);
		assert_int_equal(winners, 1);
		assert_int_equal(vm__exit_status(vm), status);
		/* One wake-up only: the loop ends at once, and its eventfd is drained. */
		assert_int_equal(loop__run(vm, err, sizeof(err)), 0);
		assert_int_equal(loop__exit(&vm->loop, err, sizeof(err)), 0);
	}
}

/* ---- the main loop ---- */

static void test_signal_status(void **state)
{
	(void)state;
	assert_int_equal(loop__signal_status(SIGTERM), 143);	/* the harness's SIGTERM_STATUS */
	assert_int_equal(loop__signal_status(SIGINT), 130);
	assert_int_equal(loop__signal_status(SIGHUP), 129);
	assert_int_equal(loop__signal_status(SIGUSR1), -1);	/* the vCPU kick */
	assert_int_equal(loop__signal_status(SIGPIPE), -1);	/* ignored by main */
	assert_int_equal(loop__signal_status(SIGKILL), -1);
	assert_int_equal(loop__signal_status(0), -1);
}

struct stopper {
	struct vm *vm;
	long delay_ms;
	int status;		/* for vm__stop, or a signal number to send with kill() */
	bool by_signal;
	double stopped_at;
};

static void *stopper_thread(void *arg)
{
	struct stopper *s = arg;

	sleep_ms(s->delay_ms);
	s->stopped_at = now_ms();
	if (s->by_signal)
		assert_int_equal(kill(getpid(), s->status), 0);
	else
		vm__stop(s->vm, s->status);
	return NULL;
}

/* Run the loop while another thread stops the VM; returns how long the loop waited. */
static double run_until_stopped(struct vm *vm, struct stopper *s)
{
	pthread_t t;
	char err[256];
	double start = now_ms(), end;

	s->vm = vm;
	assert_int_equal(pthread_create(&t, NULL, stopper_thread, s), 0);
	if (loop__run(vm, err, sizeof(err)) < 0)
		fail_msg("loop__run: %s", err);
	end = now_ms();
	assert_int_equal(pthread_join(t, NULL), 0);
	/* It waited for the stop, and woke right after it rather than on some timeout. */
	assert_true(end >= s->stopped_at);
	assert_true(end - s->stopped_at < 2000);
	return end - start;
}

static void test_loop_stop_from_thread(void **state)
{
	struct vm *vm = vm_with_loop();
	struct stopper s = { .delay_ms = 100, .status = 42 };
	char err[256];

	(void)state;
	assert_int_equal(vm__set_state(vm, VM_RUNNING, err, sizeof(err)), 0);
	assert_true(run_until_stopped(vm, &s) >= 90);
	assert_int_equal(vm__state(vm), VM_STOPPING);
	assert_int_equal(vm__exit_status(vm), 42);
	assert_int_equal(loop__exit(&vm->loop, err, sizeof(err)), 0);
	assert_int_equal(vm->loop.epoll_fd, -1);
	assert_int_equal(vm->loop.stop_fd, -1);
	assert_int_equal(vm->loop.signal_fd, -1);
}

/* The harness stops a held guest with SIGTERM and expects 143; SIGINT and SIGHUP likewise. */
static void test_loop_stop_signals(void **state)
{
	static const int sigs[] = { SIGTERM, SIGINT, SIGHUP };

	(void)state;
	for (size_t i = 0; i < ARRAY_SIZE(sigs); i++) {
		struct vm *vm = vm_with_loop();
		struct stopper s = { .delay_ms = 50, .status = sigs[i], .by_signal = true };
		char err[256];

		assert_int_equal(vm__set_state(vm, VM_RUNNING, err, sizeof(err)), 0);
		run_until_stopped(vm, &s);
		assert_int_equal(vm__exit_status(vm), 128 + sigs[i]);
		assert_int_equal(loop__exit(&vm->loop, err, sizeof(err)), 0);
	}
}

/*
 * A signal during setup waits, blocked, in the signalfd: main's one non-blocking poll before
 * starting the vCPUs finds it, and the VM never runs. Two signals: the first one counts.
 */
static void test_signal_before_start(void **state)
{
	struct vm *vm = vm_with_loop();
	char err[256];

	(void)state;
	assert_int_equal(loop__poll(vm, 0, err, sizeof(err)), 0);	/* nothing pending */
	assert_int_equal(vm__state(vm), VM_CREATED);
	assert_int_equal(kill(getpid(), SIGHUP), 0);
	assert_int_equal(kill(getpid(), SIGTERM), 0);
	assert_int_equal(loop__poll(vm, 0, err, sizeof(err)), 0);
	assert_int_equal(vm__state(vm), VM_STOPPING);
	assert_int_equal(vm__exit_status(vm), 128 + SIGHUP);
	assert_int_equal(vm__set_state(vm, VM_RUNNING, err, sizeof(err)), -1);
	assert_int_equal(loop__run(vm, err, sizeof(err)), 0);
	assert_int_equal(loop__exit(&vm->loop, err, sizeof(err)), 0);
}

static int pipe_stops(struct vm *vm, int fd, char *err, size_t errlen)
{
	char c;

	if (read(fd, &c, 1) != 1)
		return error(err, errlen, "pipe: nothing to read");
	if (c == '!')
		return error(err, errlen, "pipe: the API refused '%c'", c);
	vm__stop(vm, c);
	return 0;
}

/* Sources added later (the REST API's sockets) are served; a failing one ends the loop. */
static void test_loop_sources(void **state)
{
	struct vm *vm = vm_with_loop();
	struct loop none = LOOP_EMPTY;
	char err[256];
	int p[2];

	(void)state;
	assert_int_equal(pipe(p), 0);
	assert_int_equal(loop__add(&vm->loop, p[0], "pipe", pipe_stops, err, sizeof(err)), 0);
	assert_int_equal(vm__set_state(vm, VM_RUNNING, err, sizeof(err)), 0);
	assert_int_equal(write(p[1], "!", 1), 1);
	assert_int_equal(loop__run(vm, err, sizeof(err)), -1);
	assert_string_equal(err, "pipe: the API refused '!'");
	assert_int_equal(vm__state(vm), VM_RUNNING);
	assert_int_equal(write(p[1], "\x11", 1), 1);
	assert_int_equal(loop__run(vm, err, sizeof(err)), 0);
	assert_int_equal(vm__exit_status(vm), 0x11);

	/* Room is bounded: the table never moves, epoll holds pointers into it. */
	while (vm->loop.nsources < LOOP_MAX_SOURCES)
		assert_int_equal(loop__add(&vm->loop, dup(p[0]), "dup", pipe_stops, err,
					   sizeof(err)), 0);
	assert_int_equal(loop__add(&vm->loop, p[0], "one more", pipe_stops, err, sizeof(err)), -1);
	assert_string_equal(err, "main loop: no room for one more (16 sources)");
	for (int i = 3; i < LOOP_MAX_SOURCES; i++)	/* the dups: after stop, signal, pipe */
		assert_int_equal(close(vm->loop.sources[i].fd), 0);
	assert_int_equal(loop__add(&none, p[0], "x", pipe_stops, err, sizeof(err)), -1);
	assert_ptr_equal(strstr(err, "epoll_ctl(ADD x): "), err);
	assert_int_equal(loop__exit(&vm->loop, err, sizeof(err)), 0);
	assert_int_equal(close(p[0]), 0);
	assert_int_equal(close(p[1]), 0);
}

/* Without a loop (device unit tests) vm__stop changes the state and wakes nobody. */
static void test_stop_without_loop(void **state)
{
	struct vm *vm = fresh_vm();
	char err[64];

	(void)state;
	assert_int_equal(loop__wake(&vm->loop, err, sizeof(err)), 0);
	assert_true(vm__stop(vm, 1));
	assert_int_equal(loop__exit(&vm->loop, err, sizeof(err)), 0);
}

/* ---- failures after start-up ---- */

/* vm__fail: one line, then the stop; later failures while the VM comes down are not shown. */
static void test_fail_reports_once(void **state)
{
	struct vm *vm = vm_with_loop();
	struct capture c;
	char err[256], out[512];

	(void)state;
	assert_int_equal(vm__set_state(vm, VM_RUNNING, err, sizeof(err)), 0);
	capture_begin(&c);
	vm__fail(vm, EXIT_VMM_FAILURE, "KVM_IRQ_LINE %u: %s", 4, "Bad file descriptor");
	vm__fail(vm, EXIT_GUEST_CRASH, "vCPU 1: shutdown (triple fault)");
	capture_end(&c, out, sizeof(out));
	assert_string_equal(out, "memvisor: KVM_IRQ_LINE 4: Bad file descriptor\n");
	assert_int_equal(vm__exit_status(vm), EXIT_VMM_FAILURE);
	assert_int_equal(loop__run(vm, err, sizeof(err)), 0);
	assert_int_equal(loop__exit(&vm->loop, err, sizeof(err)), 0);
}

/* A VM with the real devices (serial as given), the loop, and no KVM: vm_fd is -1. */
static struct vm *device_vm(enum serial_mode serial, const char *file)
{
	return running_vm(&test_vm, serial, file);
}

struct port_write {
	struct vm *vm;
	uint16_t port;
	uint8_t value;
};

static void *port_writer(void *arg)
{
	struct port_write *w = arg;

	sleep_ms(50);
	bus__write(&w->vm->pio, w->port, &w->value, 1);
	return NULL;
}

/* The guest's exit port, written on another thread as a vCPU would, ends main's loop. */
static void test_exit_port_ends_loop(void **state)
{
	struct vm *vm = device_vm(SERIAL_OFF, NULL);
	struct port_write w = { .vm = vm, .port = ISA_EXIT_PORT, .value = 0x17 };
	pthread_t t;
	char err[256];

	(void)state;
	assert_int_equal(pthread_create(&t, NULL, port_writer, &w), 0);
	assert_int_equal(loop__run(vm, err, sizeof(err)), 0);
	assert_int_equal(pthread_join(t, NULL), 0);
	assert_int_equal(vm__exit_status(vm), 0x17);
	assert_int_equal(vm__teardown(vm), 0x17);
	assert_int_equal(vm__state(vm), VM_STOPPED);
	assert_false(vm->devices_up);
	assert_null(vm->serial);
	assert_int_equal(vm->loop.epoll_fd, -1);
}

/*
 * A device failing on a vCPU thread after start-up (the serial file is full): one line, status
 * EXIT_VMM_FAILURE, the loop ends and the teardown runs; no exit(1).
 */
static void test_serial_failure_after_start(void **state)
{
	struct vm *vm = device_vm(SERIAL_FILE, "/dev/full");
	struct port_write w = { .vm = vm, .port = ISA_COM1_PORT, .value = 'x' };
	struct capture c;
	pthread_t t;
	char err[256], out[512];

	(void)state;
	capture_begin(&c);
	assert_int_equal(pthread_create(&t, NULL, port_writer, &w), 0);
	assert_int_equal(loop__run(vm, err, sizeof(err)), 0);
	assert_int_equal(pthread_join(t, NULL), 0);
	assert_int_equal(vm__teardown(vm), EXIT_VMM_FAILURE);
	capture_end(&c, out, sizeof(out));
	/* The IRQ update after it fails too (no KVM here), but the VM is stopping by then. */
	assert_string_equal(out, "memvisor: --serial: write: No space left on device\n");
	assert_int_equal(vm__state(vm), VM_STOPPED);
	assert_null(vm->serial);
}

static int fail_exit_calls;

static int ok_init(struct vm *vm, char *err, size_t errlen)
{
	(void)vm;
	(void)err;
	(void)errlen;
	return 0;
}

static int counted_exit(struct vm *vm, char *err, size_t errlen)
{
	(void)vm;
	(void)err;
	(void)errlen;
	fail_exit_calls++;
	return 0;
}

static int failing_exit(struct vm *vm, char *err, size_t errlen)
{
	(void)vm;
	fail_exit_calls++;
	return error(err, errlen, "fake: close: Input/output error");
}

static const struct device_def counted_dev = { .name = "counted", .init = ok_init,
					       .exit = counted_exit };
static const struct device_def failing_dev = { .name = "failing", .init = ok_init,
					       .exit = failing_exit };

/* A device that fails to stop is reported; the others still stop; the status says so. */
static void test_teardown_device_failure(void **state)
{
	static const struct device_def *const table[] = { &counted_dev, &failing_dev,
							   &failing_dev, &counted_dev };
	struct vm *vm = vm_with_loop();
	struct capture c;
	char err[256], out[512];

	(void)state;
	assert_int_equal(bus__init(&vm->pio, "pio", PIO_LAST_PORT, NULL, err, sizeof(err)), 0);
	assert_int_equal(bus__init(&vm->mmio, "mmio", UINT64_MAX, NULL, err, sizeof(err)), 0);
	assert_int_equal(devices__init(vm, table, ARRAY_SIZE(table), err, sizeof(err)), 0);
	vm->devices_up = true;
	fail_exit_calls = 0;
	assert_true(vm__stop(vm, 0));
	capture_begin(&c);
	assert_int_equal(vm__teardown(vm), EXIT_VMM_FAILURE);
	capture_end(&c, out, sizeof(out));
	assert_int_equal(fail_exit_calls, 4);
	assert_string_equal(out, "memvisor: fake: close: Input/output error\n"
			    "memvisor: fake: close: Input/output error\n");
	assert_int_equal(vm->devices.started, 0);
	assert_int_equal(vm__state(vm), VM_STOPPED);
}

/* Tearing down a VM nobody stopped is a bug: reported, status EXIT_VMM_FAILURE, still done. */
static void test_teardown_unstopped(void **state)
{
	struct vm *vm = device_vm(SERIAL_OFF, NULL);
	struct capture c;
	char out[512];

	(void)state;
	capture_begin(&c);
	assert_int_equal(vm__teardown(vm), EXIT_VMM_FAILURE);
	capture_end(&c, out, sizeof(out));
	assert_string_equal(out, "memvisor: internal error: teardown of a running VM\n");
	assert_int_equal(vm__state(vm), VM_STOPPED);
	assert_false(vm->devices_up);
}

/*
 * Zone files: a failure before the guest ran puts them back as they were (a created file is
 * removed); once it ran they keep its data, as after a normal end.
 */
static void file_zone_vm(struct vm *vm, const char *path)
{
	struct host_info h = { .page_size = (uint64_t)sysconf(_SC_PAGESIZE), .nnodes = 1 };
	struct zone_config *z = &vm->cfg.zones[0];
	char err[512];

	vm->cfg.nzones = 1;
	*z = (struct zone_config){ .id = "f", .size = 2 * MiB, .file = (char *)path,
				   .shared = true, .host_numa_node = -1, .guest_node = -1 };
	if (backing__create(&vm->backings[0], &vm->cfg, z, z->size, &h, err, sizeof(err)) < 0)
		fail_msg("backing__create: %s", err);
	vm->nbackings = 1;
	memcpy(vm->backings[0].host, "guest", 5);
}

static void test_teardown_zone_files(void **state)
{
	struct vm *vm;
	char path[128], buf[5];
	struct stat st;
	FILE *f;

	(void)state;
	snprintf(path, sizeof(path), "%s/zone.img", tmpdir);

	vm = vm_with_loop();
	file_zone_vm(vm, path);
	assert_int_equal(stat(path, &st), 0);
	vm__stop(vm, EXIT_VMM_FAILURE);	/* say KVM_CREATE_VCPU failed */
	assert_int_equal(vm__teardown(vm), EXIT_VMM_FAILURE);
	assert_int_equal(vm->nbackings, 0);
	assert_int_equal(stat(path, &st), -1);
	assert_int_equal(errno, ENOENT);

	vm = vm_with_loop();
	file_zone_vm(vm, path);
	vm->vcpus_started = true;
	vm__stop(vm, EXIT_VMM_FAILURE);	/* say KVM_RUN failed */
	assert_int_equal(vm__teardown(vm), EXIT_VMM_FAILURE);
	assert_int_equal(stat(path, &st), 0);
	assert_int_equal(st.st_size, 2 * MiB);
	f = fopen(path, "rb");
	assert_non_null(f);
	assert_int_equal(fread(buf, 1, 5, f), 5);
	assert_memory_equal(buf, "guest", 5);
	assert_int_equal(fclose(f), 0);
	assert_int_equal(unlink(path), 0);
}

static int make_tmpdir(void **state)
{
	(void)state;
	snprintf(tmpdir, sizeof(tmpdir), "/tmp/memvisor-test-vm-XXXXXX");
	return mkdtemp(tmpdir) ? 0 : -1;
}

static int remove_tmpdir(void **state)
{
	char path[128];

	(void)state;
	snprintf(path, sizeof(path), "%s/zone.img", tmpdir);
	if (unlink(path) < 0 && errno != ENOENT)
		return -1;
	return rmdir(tmpdir);
}

#define WATCHED(t) cmocka_unit_test_setup_teardown(t, watchdog_on, watchdog_off)

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_state_table),
		cmocka_unit_test(test_state_transitions),
		cmocka_unit_test(test_stop_before_start),
		WATCHED(test_stop_race),
		cmocka_unit_test(test_signal_status),
		WATCHED(test_loop_stop_from_thread),
		WATCHED(test_loop_stop_signals),
		WATCHED(test_signal_before_start),
		WATCHED(test_loop_sources),
		cmocka_unit_test(test_stop_without_loop),
		WATCHED(test_fail_reports_once),
		WATCHED(test_exit_port_ends_loop),
		WATCHED(test_serial_failure_after_start),
		WATCHED(test_teardown_device_failure),
		WATCHED(test_teardown_unstopped),
		WATCHED(test_teardown_zone_files),
	};

	return cmocka_run_group_tests_name("vm", tests, make_tmpdir, remove_tmpdir);
}
