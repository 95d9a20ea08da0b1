/*
 * The devices' guest-visible behaviour through the port I/O bus, without KVM: ACPI power off
 * and reset (the FADT's registers), the i8042 reset line, and the UART's input from stdin.
 */
#include <errno.h>
#include <fcntl.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <unistd.h>
#include <cmocka.h>

#include "arch/x86/platform.h"
#include "util.h"
#include "vm.h"
#include "tests/devices_vm.h"

static struct vm test_vm;

static struct vm *device_vm(enum serial_mode serial)
{
	return running_vm(&test_vm, serial, NULL);
}

static void outb(struct vm *vm, uint16_t port, uint8_t v)
{
	bus__write(&vm->pio, port, &v, 1);
}

static uint8_t inb(struct vm *vm, uint16_t port)
{
	uint8_t v;

	bus__read(&vm->pio, port, &v, 1);
	return v;
}

static void end_vm(struct vm *vm, int status)
{
	assert_int_equal(vm__teardown(vm), status);
	assert_int_equal(vm__state(vm), VM_STOPPED);
}

/* S5 through sleep control ends with 0; other sleep types, SLP_EN clear, other ports do not. */
static void test_acpi_power_off(void **state)
{
	struct vm *vm = device_vm(SERIAL_OFF);

	(void)state;
	assert_int_equal(inb(vm, ACPI_SLEEP_STATUS_PORT), 0);	/* WAK_STS never set */
	outb(vm, ACPI_SLEEP_STATUS_PORT, 0x80);			/* Linux clears WAK_STS first */
	outb(vm, ACPI_SLEEP_CONTROL_PORT, ACPI_S5_SLP_TYP << 2);	/* SLP_EN clear */
	outb(vm, ACPI_SLEEP_CONTROL_PORT, 3 << 2 | 1 << 5);		/* S3: not offered */
	outb(vm, ACPI_RESET_PORT, ACPI_RESET_VALUE + 1);
	assert_false(vm__stopping(vm));
	outb(vm, ACPI_SLEEP_CONTROL_PORT, ACPI_S5_SLP_TYP << 2 | 1 << 5);
	assert_int_equal(vm__state(vm), VM_STOPPING);
	assert_int_equal(vm__exit_status(vm), 0);
	end_vm(vm, 0);
	assert_null(vm->acpi_power);
}

static void test_acpi_reset(void **state)
{
	struct vm *vm = device_vm(SERIAL_OFF);

	(void)state;
	outb(vm, ACPI_RESET_PORT, ACPI_RESET_VALUE);
	assert_int_equal(vm__exit_status(vm), EXIT_GUEST_RESET);
	end_vm(vm, EXIT_GUEST_RESET);
}

/* Linux's kb_wait() polls the status port for "input buffer empty" before it sends 0xfe. */
static void test_i8042_reset(void **state)
{
	struct vm *vm = device_vm(SERIAL_OFF);

	(void)state;
	assert_int_equal(inb(vm, ISA_I8042_CMD_PORT), 0);
	assert_int_equal(inb(vm, ISA_I8042_DATA_PORT), 0);
	outb(vm, ISA_I8042_CMD_PORT, 0xad);		/* disable keyboard: ignored */
	outb(vm, ISA_I8042_DATA_PORT, I8042_CMD_RESET);	/* not a command on the data port */
	assert_false(vm__stopping(vm));
	outb(vm, ISA_I8042_CMD_PORT, I8042_CMD_RESET);
	end_vm(vm, EXIT_GUEST_RESET);
}

/* Make fd the process's stdin; the old one is kept in *saved. */
static void stdin_from(int fd, int *saved)
{
	*saved = dup(STDIN_FILENO);
	assert_true(*saved >= 0);
	assert_int_equal(dup2(fd, STDIN_FILENO), STDIN_FILENO);
	close(fd);
}

static void stdin_restore(int saved)
{
	assert_int_equal(dup2(saved, STDIN_FILENO), STDIN_FILENO);
	close(saved);
}

enum { COM1_RBR = ISA_COM1_PORT, COM1_IIR = ISA_COM1_PORT + 2, COM1_FCR = ISA_COM1_PORT + 2,
       COM1_LSR = ISA_COM1_PORT + 5 };

/*
 * Bytes on a pipe as stdin reach RBR in order with LSR.DR; at the pipe's end the input is
 * removed from the loop (no busy loop on EOF). IER stays 0: no KVM here to take an interrupt.
 */
static void test_serial_input(void **state)
{
	struct vm *vm;
	int p[2], saved;
	char err[256];

	(void)state;
	assert_int_equal(pipe(p), 0);
	stdin_from(p[0], &saved);
	vm = device_vm(SERIAL_TTY);
	assert_int_equal(inb(vm, COM1_LSR) & 1, 0);
	assert_int_equal(write(p[1], "ls\r", 3), 3);
	assert_int_equal(loop__poll(vm, 5000, err, sizeof(err)), 0);
	assert_int_equal(inb(vm, COM1_LSR) & 0x03, 0x01);	/* DR, no overrun */
	assert_int_equal(inb(vm, COM1_IIR) & 0x0f, 0x01);	/* RDI not enabled */
	assert_int_equal(inb(vm, COM1_RBR), 'l');
	assert_int_equal(inb(vm, COM1_RBR), 's');
	assert_int_equal(inb(vm, COM1_RBR), '\r');
	assert_int_equal(inb(vm, COM1_LSR) & 1, 0);
	assert_int_equal(inb(vm, COM1_RBR), 0);
	/* Linux clears the receive FIFO when it opens the port: typed-ahead input goes. */
	assert_int_equal(write(p[1], "xyz", 3), 3);
	assert_int_equal(loop__poll(vm, 5000, err, sizeof(err)), 0);
	assert_int_equal(inb(vm, COM1_LSR) & 1, 1);
	outb(vm, COM1_FCR, 0x07);
	assert_int_equal(inb(vm, COM1_LSR) & 1, 0);
	close(p[1]);
	assert_int_equal(loop__poll(vm, 5000, err, sizeof(err)), 0);	/* EOF: removed */
	assert_int_equal(loop__poll(vm, 0, err, sizeof(err)), 0);
	vm__stop(vm, 0);
	end_vm(vm, 0);
	stdin_restore(saved);
}

/* More than the FIFO holds: the rest is dropped and LSR.OE says so, once. */
static void test_serial_overrun(void **state)
{
	static char flood[8192];
	struct vm *vm;
	int p[2], saved;
	char err[256];
	unsigned got = 0;

	(void)state;
	assert_int_equal(pipe(p), 0);
	stdin_from(p[0], &saved);
	vm = device_vm(SERIAL_TTY);
	memset(flood, 'a', sizeof(flood));
	assert_int_equal(write(p[1], flood, sizeof(flood)), (ssize_t)sizeof(flood));
	while (loop__poll(vm, 0, err, sizeof(err)) == 0 && got++ < 64)
		;
	assert_int_equal(inb(vm, COM1_LSR) & 0x03, 0x03);
	assert_int_equal(inb(vm, COM1_LSR) & 0x02, 0);		/* OE clears on read */
	for (got = 0; inb(vm, COM1_LSR) & 1; got++)
		assert_int_equal(inb(vm, COM1_RBR), 'a');
	assert_true(got >= 16 && got < sizeof(flood));
	close(p[1]);
	vm__stop(vm, 0);
	end_vm(vm, 0);
	stdin_restore(saved);
}

/* /dev/null cannot be watched (epoll: EPERM): the guest simply has no input. */
static void test_serial_no_input(void **state)
{
	struct vm *vm;
	int saved, fd = open("/dev/null", O_RDONLY);

	(void)state;
	assert_true(fd >= 0);
	stdin_from(fd, &saved);
	vm = device_vm(SERIAL_TTY);
	assert_int_equal(inb(vm, COM1_LSR) & 1, 0);
	vm__stop(vm, 0);
	end_vm(vm, 0);
	stdin_restore(saved);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_acpi_power_off),
		cmocka_unit_test(test_acpi_reset),
		cmocka_unit_test(test_i8042_reset),
		cmocka_unit_test(test_serial_input),
		cmocka_unit_test(test_serial_overrun),
		cmocka_unit_test(test_serial_no_input),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
