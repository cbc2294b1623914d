//! COM1 console (16550 UART at I/O port 0x3F8) behind [`print!`](crate::print) and
//! [`println!`](crate::println).
//!
//! Implements the register interface of the National Semiconductor PC16550D UART datasheet
//! (registers THR, IER, FCR, LCR, MCR, LSR; divisor latch), polled, 115200 8N1.
//!
//! Locking: one spin lock serialises whole `print!` calls. It is taken with interrupts masked on
//! the holding CPU, so an interrupt handler on that CPU can never spin on a lock its own CPU
//! holds. An exception or panic raised while this CPU holds the lock (say, inside a `Display`
//! impl) finds itself the owner and writes without waiting, so fatal reports always get out.

use core::fmt::{self, Write};
use core::sync::atomic::{AtomicUsize, Ordering};

use x86_64::instructions::interrupts;
use x86_64::instructions::port::Port;

use crate::percpu::cpu_index;

const COM1: u16 = 0x3F8;
const THR: u16 = COM1; // transmit holding register (DLAB = 0)
const IER: u16 = COM1 + 1; // interrupt enable (DLAB = 0); divisor high byte (DLAB = 1)
const FCR: u16 = COM1 + 2; // FIFO control
const LCR: u16 = COM1 + 3; // line control
const MCR: u16 = COM1 + 4; // modem control
const LSR: u16 = COM1 + 5; // line status
const LSR_THR_EMPTY: u8 = 1 << 5;

/// Owner of the console: 0 when free, otherwise the owning CPU's index + 1.
static OWNER: AtomicUsize = AtomicUsize::new(0);

/// Programs COM1 for 115200 baud, 8 data bits, no parity, one stop bit, FIFOs on, no interrupts.
pub(crate) fn init() {
    let writes: [(u16, u8); 7] = [
        (IER, 0x00), // no UART interrupts: output is polled
        (LCR, 0x80), // DLAB = 1: the next two writes set the baud divisor
        (THR, 0x01), // divisor 1 = 115200 baud, low byte
        (IER, 0x00), // divisor high byte
        (LCR, 0x03), // DLAB = 0, 8N1
        (FCR, 0xC7), // enable and clear FIFOs, 14-byte threshold
        (MCR, 0x03), // DTR and RTS
    ];
    for (port, value) in writes {
        // SAFETY: these ports belong to COM1, which nothing but this module drives, and the
        // sequence is the datasheet's initialisation; port writes touch no memory.
        unsafe { Port::<u8>::new(port).write(value) };
    }
}

/// Writes one byte, waiting until the transmit holding register is empty.
fn write_byte(byte: u8) {
    // SAFETY: reading COM1's line status register has no side effects on memory.
    while unsafe { Port::<u8>::new(LSR).read() } & LSR_THR_EMPTY == 0 {
        core::hint::spin_loop();
    }
    // SAFETY: the caller holds the console (or is a fatal path that owns it); the UART is
    // ready for a byte.
    unsafe { Port::<u8>::new(THR).write(byte) };
}

struct Uart;

impl Write for Uart {
    fn write_str(&mut self, s: &str) -> fmt::Result {
        s.bytes().for_each(write_byte);
        Ok(())
    }
}

/// Writes `args` atomically with respect to other CPUs and to interrupts on this one.
///
/// Used by [`print!`](crate::print); call that instead.
pub fn print_fmt(args: fmt::Arguments) {
    interrupts::without_interrupts(|| {
        let me = cpu_index() + 1;
        let reentered = OWNER.load(Ordering::Relaxed) == me;
        if !reentered {
            while OWNER
                .compare_exchange_weak(0, me, Ordering::Acquire, Ordering::Relaxed)
                .is_err()
            {
                core::hint::spin_loop();
            }
        }
        // Writing to the UART cannot fail.
        let _ = Uart.write_fmt(args);
        if !reentered {
            OWNER.store(0, Ordering::Release);
        }
    });
}

/// Prints to the COM1 console, like `std::print!`. Safe from any CPU and from interrupt handlers.
#[macro_export]
macro_rules! print {
    ($($arg:tt)*) => {
        $crate::__print_fmt(format_args!($($arg)*))
    };
}

/// Prints a line to the COM1 console, like `std::println!`. Safe from any CPU and from
/// interrupt handlers.
#[macro_export]
macro_rules! println {
    () => {
        $crate::print!("\n")
    };
    ($($arg:tt)*) => {
        $crate::__print_fmt(format_args!("{}\n", format_args!($($arg)*)))
    };
}
