/*
 * 16550A UART at 0x3f8 (COM1, IRQ 4): transmit only. Output goes to stdout, a file or nowhere
 * (--serial tty|file=PATH|off). Input is not wired: RBR reads 0 and LSR never shows data ready.
 */
#include <fcntl.h>
#include <unistd.h>

#include "util.h"
#include "vm.h"

#define SERIAL_BASE 0x3f8
#define SERIAL_IRQ 4

enum { RBR_THR = 0, IER = 1, IIR_FCR = 2, LCR = 3, MCR = 4, LSR = 5, MSR = 6, SCR = 7 };

#define IER_THRI 0x02
#define IIR_NO_INT 0x01
#define IIR_THRI 0x02
#define IIR_FIFO_ENABLED 0xc0
#define LCR_DLAB 0x80
#define LSR_THRE 0x20
#define LSR_TEMT 0x40
#define MCR_LOOP 0x10
#define MSR_DCD_DSR_CTS 0xb0

void serial__init(struct vm *vm)
{
	struct serial *s = &vm->serial;

	memset(s, 0, sizeof(*s));
	s->out_fd = -1;
	switch (vm->cfg.serial) {
	case SERIAL_TTY:
		s->out_fd = STDOUT_FILENO;
		break;
	case SERIAL_FILE:
		s->out_fd = open(vm->cfg.serial_file, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
		if (s->out_fd < 0)
			die_perror("--serial: cannot open '%s'", vm->cfg.serial_file);
		s->owns_fd = true;
		break;
	case SERIAL_OFF:
		break;
	}
}

void serial__exit(struct vm *vm)
{
	struct serial *s = &vm->serial;

	if (s->owns_fd && close(s->out_fd) < 0)
		die_perror("--serial: closing '%s'", vm->cfg.serial_file);
	s->out_fd = -1;
}

/* The transmitter is always empty at once, so a THR interrupt is pending whenever enabled. */
static void serial__update_irq(struct vm *vm)
{
	struct serial *s = &vm->serial;
	bool pending = (s->ier & IER_THRI) && s->thr_irq_pending;

	kvm__irq_line(vm, SERIAL_IRQ, pending);
}

static void serial__transmit(struct vm *vm, uint8_t c)
{
	struct serial *s = &vm->serial;
	ssize_t n;

	if (s->out_fd < 0 || (s->mcr & MCR_LOOP))
		return;
	do
		n = write(s->out_fd, &c, 1);
	while (n < 0 && errno == EINTR);
	/*
	 * A closed stdout (the harness went away; SIGPIPE is ignored) must not kill the guest.
	 * Other errors end the VM, reported once: this runs on a vCPU thread, where exit(1) would
	 * skip the teardown and claim a rejected configuration.
	 */
	if (n < 0 && errno != EPIPE && !vm->stopping) {
		fprintf(stderr, "memvisor: --serial: write: %s\n", strerror(errno));
		vm__stop(vm, EXIT_GUEST_CRASH);
	}
}

static void serial__out(struct vm *vm, unsigned reg, uint8_t v)
{
	struct serial *s = &vm->serial;

	switch (reg) {
	case RBR_THR:
		if (s->lcr & LCR_DLAB) {
			s->dll = v;
			return;
		}
		serial__transmit(vm, v);
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
	default:	/* FCR: FIFOs are always on; LSR and MSR are read-only */
		return;
	}
	serial__update_irq(vm);
}

static uint8_t serial__in(struct vm *vm, unsigned reg)
{
	struct serial *s = &vm->serial;
	uint8_t v;

	switch (reg) {
	case RBR_THR:
		return (s->lcr & LCR_DLAB) ? s->dll : 0;
	case IER:
		return (s->lcr & LCR_DLAB) ? s->dlm : s->ier;
	case IIR_FCR:
		if ((s->ier & IER_THRI) && s->thr_irq_pending) {
			/* Reading IIR acknowledges the THR-empty interrupt, as on real parts. */
			s->thr_irq_pending = false;
			v = IIR_FIFO_ENABLED | IIR_THRI;
			serial__update_irq(vm);
		} else {
			v = IIR_FIFO_ENABLED | IIR_NO_INT;
		}
		return v;
	case LCR:
		return s->lcr;
	case MCR:
		return s->mcr;
	case LSR:
		return LSR_THRE | LSR_TEMT;
	case MSR:
		return MSR_DCD_DSR_CTS;
	default:
		return s->scr;
	}
}

bool serial__io(struct vm *vm, uint16_t port, bool out, uint8_t *data, unsigned size)
{
	if (port < SERIAL_BASE || port >= SERIAL_BASE + 8)
		return false;
	for (unsigned i = 0; i < size && port + i < SERIAL_BASE + 8; i++) {
		if (out)
			serial__out(vm, port + i - SERIAL_BASE, data[i]);
		else
			data[i] = serial__in(vm, port + i - SERIAL_BASE);
	}
	return true;
}
