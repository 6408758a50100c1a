//! statetensor-hugepages: asks the operating system to back a long-lived buffer — a resident
//! weight, a state tensor — with transparent huge pages (2 MiB on x86-64, and on arm64 with
//! 4 KiB base pages; where the huge page is larger the advice covers less or nothing).
//!
//! Why: a decoder step streams every weight and the whole KV cache through the cores once,
//! and with 4 KiB pages a 16 MiB working set spans 4,096 pages, more than the core's TLB
//! holds, so the matrix-vector products wait on page walks as well as on memory. With the
//! whole heap on huge pages the same step ran 1.26x as fast (decoder step medium, 1.81 vs
//! 1.43 ms, medians of seven alternating runs on a 2-vCPU AMD EPYC); with the resident
//! weights and states advised here, 1.61 vs 1.43 ms (buffers under 4 MiB may hold no whole
//! huge page); a bare matrix-vector product over 16 MiB of matrices 1.2–1.45x. Many Linux
//! systems (Debian, Ubuntu) ship transparent huge pages in `madvise` mode: a process gets
//! them only for memory it asks for.
//!
//! Design choices:
//! - **Advice, never a requirement.** [`prefer_huge_pages`] advises the whole 2 MiB pages
//!   that lie inside the buffer (`MADV_HUGEPAGE`, so pages touched later come huge) and,
//!   with [`When::Now`], asks for the pages already there to be collapsed at once
//!   (`MADV_COLLAPSE`, Linux 6.1+: a copy of each page, so only for buffers filled once and
//!   read every step, as weights are; a zeroed state left to [`When::AsTouched`] costs no
//!   memory until it is written). Either may be refused (huge pages disabled, an older
//!   kernel, another OS); the buffer then stays as it was: neither advice alters contents.
//! - **Only the inside of a buffer.** The advised range starts at the first 2 MiB boundary
//!   in the buffer and ends at the last, so no memory outside it is touched; a buffer
//!   smaller than 4 MiB may contain no whole huge page, and is left alone.
//! - **Its own crate because it is FFI.** `madvise` is a system call; the workspace keeps
//!   `unsafe` to the crates that call foreign code, and this one holds one `unsafe` block.

#![allow(unsafe_code)]

/// The size of a transparent huge page on the platforms that have them.
pub const HUGE_PAGE_BYTES: usize = 2 << 20;

/// What became of a request to back a buffer with huge pages.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backing {
    /// The buffer holds no whole huge page: nothing was asked.
    TooSmall,
    /// The OS took the advice for the whole huge pages inside the buffer; `collapsed` says
    /// whether the pages already there were moved onto huge pages at once.
    Advised {
        /// Bytes advised (a multiple of [`HUGE_PAGE_BYTES`]).
        bytes: usize,
        /// Whether `MADV_COLLAPSE` succeeded.
        collapsed: bool,
    },
    /// The OS refused (huge pages disabled or unsupported); the buffer is as it was.
    Refused,
}

/// The whole huge pages inside `data`, as (start address, length); `None` if there is none.
pub fn huge_page_span<T>(data: &[T]) -> Option<(usize, usize)> {
    let start = data.as_ptr() as usize;
    let end = start.checked_add(std::mem::size_of_val(data))?;
    let first = start.checked_next_multiple_of(HUGE_PAGE_BYTES)?;
    let last = end - end % HUGE_PAGE_BYTES;
    (last > first).then(|| (first, last - first))
}

/// When the pages already under a buffer move onto huge pages.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum When {
    /// At once (`MADV_COLLAPSE`): for a buffer already filled that stays, such as a weight.
    Now,
    /// Only pages touched from now on come huge (and the kernel's background thread may
    /// collapse the rest later): for a buffer not yet written, such as a zeroed state.
    AsTouched,
}

/// Asks the OS to back the whole huge pages inside `data` with transparent huge pages (see
/// the crate docs). Never changes the contents of `data`.
pub fn prefer_huge_pages<T>(data: &[T], when: When) -> Backing {
    match huge_page_span(data) {
        None => Backing::TooSmall,
        Some(_) => os::advise(data, when),
    }
}

#[cfg(target_os = "linux")]
mod os {
    use super::{huge_page_span, Backing, When};

    /// `MADV_COLLAPSE` from the kernel's ABI (linux/mman.h, Linux 6.1); libc names it only
    /// for some C libraries.
    const MADV_COLLAPSE: libc::c_int = 25;

    /// Gives `advice` for the whole huge pages inside `data`; false if the OS refused.
    fn madvise<T>(data: &[T], advice: libc::c_int) -> bool {
        let Some((addr, len)) = huge_page_span(data) else {
            return false;
        };
        // `addr..addr + len` lies inside `data` (huge_page_span), mapped memory this process
        // holds a borrow of. MADV_HUGEPAGE and MADV_COLLAPSE change only which physical pages
        // back the range and how the kernel books it (the hint may split the mapping's
        // bookkeeping in two, or fail), never its contents or its addresses (madvise(2)).
        // SAFETY: the range is mapped memory borrowed from `data`, and these advices move no
        // byte and no address, so no Rust reference is invalidated (see above).
        unsafe { libc::madvise(addr as *mut libc::c_void, len, advice) == 0 }
    }

    pub(super) fn advise<T>(data: &[T], when: When) -> Backing {
        if !madvise(data, libc::MADV_HUGEPAGE) {
            return Backing::Refused;
        }
        Backing::Advised {
            bytes: huge_page_span(data).map_or(0, |(_, len)| len),
            collapsed: when == When::Now && madvise(data, MADV_COLLAPSE),
        }
    }
}

#[cfg(not(target_os = "linux"))]
mod os {
    use super::{Backing, When};

    pub(super) fn advise<T>(_data: &[T], _when: When) -> Backing {
        Backing::Refused
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_span_is_the_whole_huge_pages_inside_the_buffer() {
        let buf = vec![0u8; 3 * HUGE_PAGE_BYTES];
        let (addr, len) = huge_page_span(&buf).expect("a 6 MiB buffer holds a whole huge page");
        let start = buf.as_ptr() as usize;
        assert_eq!(addr % HUGE_PAGE_BYTES, 0);
        assert_eq!(len % HUGE_PAGE_BYTES, 0);
        assert!(addr >= start && addr + len <= start + buf.len());
        assert!(len >= HUGE_PAGE_BYTES);
        // a buffer smaller than a huge page holds none
        assert_eq!(huge_page_span(&buf[..HUGE_PAGE_BYTES - 1]), None);
        assert_eq!(
            prefer_huge_pages(&buf[..HUGE_PAGE_BYTES / 2], When::Now),
            Backing::TooSmall
        );
        // an empty slice and a slice of zero-sized values hold none
        assert_eq!(huge_page_span::<u8>(&[]), None);
        assert_eq!(huge_page_span(&[(); 1 << 30]), None);
    }

    #[test]
    fn advising_keeps_the_contents_and_follows_the_systems_setting() {
        let buf: Vec<u32> = (0..3 * HUGE_PAGE_BYTES as u32 / 4).collect();
        let backing = prefer_huge_pages(&buf, When::Now);
        assert!(buf.iter().enumerate().all(|(i, &x)| x == i as u32));
        let setting = std::fs::read_to_string("/sys/kernel/mm/transparent_hugepage/enabled");
        match setting {
            // `[always]` or `[madvise]`: the advice is taken
            Ok(s) if cfg!(target_os = "linux") && !s.contains("[never]") => {
                assert!(
                    matches!(backing, Backing::Advised { bytes, .. } if bytes >= HUGE_PAGE_BYTES)
                )
            }
            _ => assert!(matches!(
                backing,
                Backing::Refused | Backing::Advised { .. }
            )),
        }
        // advice for pages touched later never collapses the pages already there
        let later = prefer_huge_pages(&buf, When::AsTouched);
        assert!(matches!(
            later,
            Backing::Refused
                | Backing::Advised {
                    collapsed: false,
                    ..
                }
        ));
    }
}
