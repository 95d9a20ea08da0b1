/*
 * 16550A UART on COM1 (its legacy port and IRQ: arch/x86/platform.h). Output goes to stdout, a
 * file or nowhere (--serial tty|file=PATH|off). With --serial tty, memvisor's stdin is the
 * guest's input when it can be watched (a terminal, pipe or socket; not a regular file or
 * /dev/null): the main loop reads it into a receive FIFO and raises the data-ready interrupt. A
 * terminal is put in raw mode (no echo, no line editing; Ctrl-C still stops memvisor) and given
 * back as it was. The FIFO holds SERIAL_RX_SIZE bytes, more than a 16550's 16 so that a paste
 * survives; past that, input is dropped and LSR reports an overrun, as the hardware does.
 */
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <termios.h>
#include <unistd.h>

#include "arch/x86/aml.h"
#include "arch/x86/platform.h"
#include "util.h"
#include "vm.h"

enum { RBR_THR = 0, IER = 1, IIR_FCR = 2, LCR = 3, MCR = 4, LSR = 5, MSR = 6, SCR = 7 };

#define IER_RDI 0x01
#define IER_THRI 0x02
#define IIR_NO_INT 0x01
#define IIR_THRI 0x02
#define IIR_RDI 0x04
#define IIR_FIFO_ENABLED 0xc0
#define LCR_DLAB 0x80
#define FCR_CLEAR_RX 0x02
#define LSR_DR 0x01
#define LSR_OE 0x02
#define LSR_THRE 0x20
#define LSR_TEMT 0x40
#define MCR_LOOP 0x10
#define MSR_DCD_DSR_CTS 0xb0

#define SERIAL_RX_SIZE 4096

struct serial {
	struct vm *vm;
	/* Every vCPU may print: the registers and the IRQ line's level change together. */
	pthread_mutex_t lock;
	uint8_t ier, lcr, mcr, scr, dll, dlm;
	bool thr_irq_pending;
	bool irq_level;		/* what the line was last set to */
	uint32_t gsi;
	int out_fd;		/* -1 when --serial off */
	bool owns_fd;

	/* Input: filled by the main loop, drained by the guest through RBR; under lock. */
	uint8_t rx[SERIAL_RX_SIZE];
	unsigned rx_head, rx_count;
	bool overrun;
	int in_fd;		/* watched by the main loop; -1: no input */
	bool tty_saved;		/* in_fd is a terminal put in raw mode: restore tty */
	struct termios tty;
};

/*
 * A default mutex fails only when misused. Should it ever, the VM ends (reported once): this runs
 * on vCPU threads, where no caller can take an error.
 */
static bool serial__check(struct serial *s, int e, const char *what)
{
	if (!e)
		return true;
	vm__fail(s->vm, EXIT_VMM_FAILURE, "serial: %s: %s", what, strerror(e));
	return false;
}

/*
 * The transmitter is always empty at once, so a THR interrupt is pending whenever enabled; a
 * data-ready one while the FIFO holds input.
 */
static void serial__update_irq(struct serial *s)
{
	bool pending = ((s->ier & IER_THRI) && s->thr_irq_pending) ||
		       ((s->ier & IER_RDI) && s->rx_count);

	/* An ioctl only when the level changes: the line is edge-triggered (ISA). */
	if (pending != s->irq_level) {
		s->irq_level = pending;
		kvm__irq_line(s->vm, s->gsi, pending);
	}
}

static void serial__transmit(struct serial *s, uint8_t c)
{
	ssize_t n;

	if (s->out_fd < 0 || (s->mcr & MCR_LOOP))
		return;
	do
		n = write(s->out_fd, &c, 1);
	while (n < 0 && errno == EINTR);
	/*
	 * A closed stdout (the harness went away; SIGPIPE is ignored) must not kill the guest.
	 * Other errors end the VM, reported once: this runs on a vCPU thread.
	 */
	if (n < 0 && errno != EPIPE)
		vm__fail(s->vm, EXIT_VMM_FAILURE, "--serial: write: %s", strerror(errno));
}

static void serial__out(struct serial *s, unsigned reg, uint8_t v)
{
	switch (reg) {
	case RBR_THR:
		if (s->lcr & LCR_DLAB) {
			s->dll = v;
			return;
		}
		serial__transmit(s, v);
		s->thr_irq_pending = true;
		break;
	case IER:
		if (s->lcr & LCR_DLAB) {
			s->dlm = v;
			return;
		}
		s->ier = v & 0x0f;
		s->thr_irq_pending = true;
		break;
	case LCR:
		s->lcr = v;
		return;
	case MCR:
		s->mcr = v & 0x1f;
		return;
	case SCR:
		s->scr = v;
		return;
	case IIR_FCR:	/* FIFOs are always on; "clear receive FIFO" drops pending input */
		if (v & FCR_CLEAR_RX) {
			s->rx_count = 0;
			s->overrun = false;
			break;
		}
		return;
	default:	/* LSR and MSR are read-only */
		return;
	}
	serial__update_irq(s);
}

static uint8_t serial__in(struct serial *s, unsigned reg)
{
	uint8_t v;

	switch (reg) {
	case RBR_THR:
		if (s->lcr & LCR_DLAB)
			return s->dll;
		if (!s->rx_count)
			return 0;
		v = s->rx[s->rx_head];
		s->rx_head = (s->rx_head + 1) % SERIAL_RX_SIZE;
		s->rx_count--;
		serial__update_irq(s);
		return v;
	case IER:
		return (s->lcr & LCR_DLAB) ? s->dlm : s->ier;
	case IIR_FCR:
		/* Received data outranks THR empty; it is acknowledged by reading RBR, not IIR. */
		if ((s->ier & IER_RDI) && s->rx_count) {
			v = IIR_FIFO_ENABLED | IIR_RDI;
		} else if ((s->ier & IER_THRI) && s->thr_irq_pending) {
			/* Reading IIR acknowledges the THR-empty interrupt, as on real parts. */
			s->thr_irq_pending = false;
			v = IIR_FIFO_ENABLED | IIR_THRI;
			serial__update_irq(s);
		} else {
			v = IIR_FIFO_ENABLED | IIR_NO_INT;
		}
		return v;
	case LCR:
		return s->lcr;
	case MCR:
		return s->mcr;
	case LSR:
		v = LSR_THRE | LSR_TEMT | (s->rx_count ? LSR_DR : 0) | (s->overrun ? LSR_OE : 0);
		s->overrun = false;	/* OE clears when LSR is read */
		return v;
	case MSR:
		return MSR_DCD_DSR_CTS;
	default:
		return s->scr;
	}
}

/* The bus keeps offset + size within the 8 registers; a wide access touches consecutive ones. */
static void serial__read(void *opaque, uint64_t offset, uint8_t *data, unsigned size)
{
	struct serial *s = opaque;

	if (!serial__check(s, pthread_mutex_lock(&s->lock), "pthread_mutex_lock"))
		return;
	for (unsigned i = 0; i < size; i++)
		data[i] = serial__in(s, (unsigned)offset + i);
	serial__check(s, pthread_mutex_unlock(&s->lock), "pthread_mutex_unlock");
}

static void serial__write(void *opaque, uint64_t offset, const uint8_t *data, unsigned size)
{
	struct serial *s = opaque;

	if (!serial__check(s, pthread_mutex_lock(&s->lock), "pthread_mutex_lock"))
		return;
	for (unsigned i = 0; i < size; i++)
		serial__out(s, (unsigned)offset + i, data[i]);
	serial__check(s, pthread_mutex_unlock(&s->lock), "pthread_mutex_unlock");
}

static const struct bus_ops serial_ops = {
	.read = serial__read,
	.write = serial__write,
};

/* Main loop: input arrived on in_fd. Errors and the end of input only end the input. */
static int serial__input_ready(struct vm *vm, int fd, char *err, size_t errlen)
{
	struct serial *s = vm->serial;
	struct pollfd pfd = { .fd = fd, .events = POLLIN };
	uint8_t buf[256];
	ssize_t n;

	/*
	 * Another reader of the same terminal or pipe may have taken the input since epoll said
	 * so: a blocking read would then stall the main loop. Look again, without waiting.
	 */
	if (poll(&pfd, 1, 0) == 0)
		return 0;
	n = read(fd, buf, sizeof(buf));

	if (n < 0 && (errno == EINTR || errno == EAGAIN))
		return 0;
	if (n <= 0) {
		if (n < 0)
			report("--serial: reading stdin: %s; the guest gets no more input",
			       strerror(errno));
		s->in_fd = -1;
		return loop__remove(&vm->loop, fd, err, errlen);
	}
	if (!serial__check(s, pthread_mutex_lock(&s->lock), "pthread_mutex_lock"))
		return 0;
	for (ssize_t i = 0; i < n; i++) {
		if (s->rx_count == SERIAL_RX_SIZE) {
			s->overrun = true;
			break;
		}
		s->rx[(s->rx_head + s->rx_count++) % SERIAL_RX_SIZE] = buf[i];
	}
	serial__update_irq(s);
	serial__check(s, pthread_mutex_unlock(&s->lock), "pthread_mutex_unlock");
	return 0;
}

/*
 * Watch stdin for the guest, when there is something to watch: epoll refuses regular files and
 * /dev/null (EPERM), which simply mean no input. A terminal is only taken in the foreground: a
 * background job that touched it would be stopped by SIGTTIN/SIGTTOU.
 */
static int serial__input_open(struct vm *vm, struct serial *s, char *err, size_t errlen)
{
	int fd = STDIN_FILENO;
	struct termios raw;

	if (isatty(fd)) {
		if (tcgetpgrp(fd) != getpgrp())
			return 0;
		if (tcgetattr(fd, &s->tty) < 0)
			return error(err, errlen, "--serial: tcgetattr(stdin): %s", strerror(errno));
		raw = s->tty;
		cfmakeraw(&raw);
		raw.c_oflag = s->tty.c_oflag;	/* keep output as it was: guests print bare \n */
		/* Ctrl-C stops memvisor, as everywhere else; no other key may stop or kill it raw. */
		raw.c_lflag |= ISIG;
		raw.c_cc[VQUIT] = _POSIX_VDISABLE;
		raw.c_cc[VSUSP] = _POSIX_VDISABLE;
		if (tcsetattr(fd, TCSANOW, &raw) < 0)
			return error(err, errlen, "--serial: tcsetattr(stdin): %s", strerror(errno));
		s->tty_saved = true;
	}
	if (loop__add(&vm->loop, fd, "serial input", serial__input_ready, err, errlen) < 0) {
		int e = errno;

		/* Not pollable (EPERM): no input. A terminal is pollable, so none was changed. */
		if (e == EPERM || e == EBADF || e == EINVAL)
			return 0;
		if (s->tty_saved)
			tcsetattr(fd, TCSANOW, &s->tty);
		s->tty_saved = false;
		return -1;
	}
	s->in_fd = fd;
	return 0;
}

/*
 * Give the terminal back as it was. A terminal that hung up (EIO) has no settings left to
 * restore; one owned by another process group now would stop us with SIGTTOU, hence blocked.
 */
static int serial__restore_tty(struct serial *s)
{
	sigset_t ttou, old;
	int r = 0;

	if (!s->tty_saved)
		return 0;
	s->tty_saved = false;
	sigemptyset(&ttou);
	sigaddset(&ttou, SIGTTOU);
	pthread_sigmask(SIG_BLOCK, &ttou, &old);
	if (tcsetattr(STDIN_FILENO, TCSANOW, &s->tty) < 0 && errno != EIO && errno != ENOTTY)
		r = -1;
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	return r;
}

void serial__restore_terminal(struct vm *vm)
{
	if (vm->serial)
		serial__restore_tty(vm->serial);
}

static int serial__input_close(struct vm *vm, struct serial *s, char *err, size_t errlen)
{
	int r = 0;

	if (s->in_fd >= 0 && loop__remove(&vm->loop, s->in_fd, err, errlen) < 0)
		r = -1;
	s->in_fd = -1;
	if (serial__restore_tty(s) < 0 && !r)
		r = error(err, errlen, "--serial: restoring the terminal: %s", strerror(errno));
	return r;
}

/* close() is where a network file system reports a write that did not make it. */
static int serial__close(struct vm *vm, struct serial *s, char *err, size_t errlen)
{
	int r = 0;

	if (s->owns_fd && close(s->out_fd) < 0)
		r = error(err, errlen, "--serial: closing '%s': %s", quote(vm->cfg.serial_file).s,
			  strerror(errno));
	s->out_fd = -1;
	return r;
}

/* Runs before /dev/kvm is opened: a bad --serial file= is refused before any guest memory. */
static int serial__init(struct vm *vm, char *err, size_t errlen)
{
	struct serial *s = calloc(1, sizeof(*s));
	char undo[256];
	int e;

	if (!s)
		return error(err, errlen, "serial: out of memory");
	*s = (struct serial){ .vm = vm, .gsi = ISA_COM1_IRQ, .out_fd = -1, .in_fd = -1 };
	switch (vm->cfg.serial) {
	case SERIAL_TTY:
		s->out_fd = STDOUT_FILENO;
		break;
	case SERIAL_FILE:
		s->out_fd = open(vm->cfg.serial_file, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
		if (s->out_fd < 0) {
			error(err, errlen, "--serial: cannot open '%s': %s",
			      quote(vm->cfg.serial_file).s, strerror(errno));
			free(s);
			return -1;
		}
		s->owns_fd = true;
		break;
	case SERIAL_OFF:
		break;
	}
	e = pthread_mutex_init(&s->lock, NULL);
	if (e) {
		error(err, errlen, "serial: pthread_mutex_init: %s", strerror(e));
		goto fail_fd;
	}
	if (gsi__reserve(&vm->gsi, s->gsi, "serial", err, errlen) < 0)
		goto fail_lock;
	if (bus__register(&vm->pio, ISA_COM1_PORT, ISA_COM1_LEN, &serial_ops, s, "serial", err,
			  errlen) < 0)
		goto fail_gsi;
	vm->serial = s;
	if (vm->cfg.serial == SERIAL_TTY && serial__input_open(vm, s, err, errlen) < 0)
		goto fail_bus;
	return 0;

fail_bus:
	vm->serial = NULL;
	bus__unregister(&vm->pio, ISA_COM1_PORT, undo, sizeof(undo));
fail_gsi:
	gsi__release(&vm->gsi, s->gsi);
fail_lock:
	/* Unlocked and never used: it cannot be busy. The error in err is the one to report. */
	pthread_mutex_destroy(&s->lock);
fail_fd:
	/* The file was only opened: nothing written that close could lose. */
	serial__close(vm, s, undo, sizeof(undo));
	free(s);
	return -1;
}

static int serial__exit(struct vm *vm, char *err, size_t errlen)
{
	struct serial *s = vm->serial;
	int e, r = 0;

	if (!s)
		return 0;
	/* Each step is undone whatever the others did; the first failure is returned. */
	if (serial__input_close(vm, s, err, errlen) < 0)
		r = -1;
	if (bus__unregister(&vm->pio, ISA_COM1_PORT, err, r ? 0 : errlen) < 0)
		r = -1;
	gsi__release(&vm->gsi, s->gsi);
	e = pthread_mutex_destroy(&s->lock);
	if (e && !r)
		r = error(err, errlen, "serial: pthread_mutex_destroy: %s", strerror(e));
	if (serial__close(vm, s, err, r ? 0 : errlen) < 0)
		r = -1;
	free(s);
	vm->serial = NULL;
	return r;
}

/* COM1 at the PC's resources, so that the guest's PNP layer claims it. */
static void serial__dsdt(const struct vm *vm, struct aml *a)
{
	(void)vm;
	aml__scope(a, "\\_SB_");
	aml__device(a, "COM1");
	aml__name(a, "_HID");
	aml__eisaid(a, "PNP0501");
	aml__name(a, "_UID");
	aml__int(a, 0);
	aml__name(a, "_CRS");
	aml__resource_template(a);
	aml__rt_io(a, AML_DECODE16, ISA_COM1_PORT, ISA_COM1_PORT, 1, ISA_COM1_LEN);
	aml__rt_irq_noflags(a, 1u << ISA_COM1_IRQ);
	aml__pkg_close(a);
	aml__pkg_close(a);
	aml__pkg_close(a);
}

const struct device_def serial_device = {
	.name = "serial",
	.init = serial__init,
	.exit = serial__exit,
	.dsdt = serial__dsdt,
};
