//! Matrix products in bf16 on Intel AMX tiles (Sapphire Rapids and later), for the encoder.
//!
//! `x (rows, k) · w (k, n)`: `w` is converted once to bf16 and packed into the tiles'
//! layout ([`PackedBf16`]); on each product `x` is rounded to bf16 (round to nearest
//! even), the products are summed in f32 by `TDPBF16PS`, and the result is f32. That is
//! the arithmetic of PyTorch's bf16 autocast on the same CPU: the inputs lose their low
//! 16 bits, the sums do not.
//!
//! This is the workspace's one crate with `unsafe`: the tile instructions are inline
//! assembly, and Linux hands a process the tiles' 8 KiB of state only when it asks
//! (`arch_prctl(ARCH_REQ_XCOMP_PERM, XFEATURE_XTILEDATA)`). [`available`] checks the CPU
//! (CPUID) and asks the kernel, once; everything else here is safe to call once it said
//! yes, and [`matmul`] panics if it did not.
//!
//! The product: C is cut into blocks of 32 × 32 (four 16 × 16 f32 tiles); each block
//! walks `k` 32 at a time, loading two tiles of `x` (16 rows × 32 bf16 each) and two of
//! `w` (32 × 16, pairs of rows interleaved as `TDPBF16PS` reads them), four tile
//! products per step. Blocks are spread over the current rayon pool.

use rayon::prelude::*;
use std::sync::OnceLock;

/// Rows of a tile.
const TILE_ROWS: usize = 16;
/// bf16 values along `k` in one tile row (64 bytes).
const TILE_K: usize = 32;
/// f32 columns of a result tile (64 bytes).
const TILE_N: usize = 16;
/// Rows and columns of the block of the result one task step computes (2 × 2 tiles).
const BLOCK: usize = 32;
/// u16 values in one packed tile of `w`.
const TILE_LEN: usize = TILE_ROWS * TILE_K;

/// Whether this process can run [`matmul`]: an x86-64 CPU with AMX-TILE and AMX-BF16,
/// and a Linux kernel that gave the process the tile state. Asked once, then remembered.
pub fn available() -> bool {
    static AVAILABLE: OnceLock<bool> = OnceLock::new();
    *AVAILABLE.get_or_init(detect)
}

#[cfg(all(target_arch = "x86_64", target_os = "linux"))]
fn detect() -> bool {
    use std::arch::x86_64::__cpuid_count;
    const ARCH_GET_XCOMP_PERM: libc::c_long = 0x1022;
    const ARCH_REQ_XCOMP_PERM: libc::c_long = 0x1023;
    const XFEATURE_XTILEDATA: libc::c_long = 18;
    // CPUID leaf 7, sub-leaf 0: EDX bit 22 AMX-BF16, bit 24 AMX-TILE.
    #[allow(unused_unsafe)]
    let (max_leaf, edx) = unsafe { (__cpuid_count(0, 0).eax, __cpuid_count(7, 0).edx) };
    if max_leaf < 7 || edx & (1 << 22) == 0 || edx & (1 << 24) == 0 {
        return false;
    }
    // SAFETY: arch_prctl with these codes only reads its integer arguments and, for GET,
    // writes one u64 through the pointer we pass, which lives across the call.
    unsafe {
        if libc::syscall(libc::SYS_arch_prctl, ARCH_REQ_XCOMP_PERM, XFEATURE_XTILEDATA) != 0 {
            return false;
        }
        let mut granted: u64 = 0;
        if libc::syscall(libc::SYS_arch_prctl, ARCH_GET_XCOMP_PERM, &mut granted as *mut u64) != 0 {
            return false;
        }
        granted & (1 << XFEATURE_XTILEDATA) != 0
    }
}

#[cfg(not(all(target_arch = "x86_64", target_os = "linux")))]
fn detect() -> bool {
    false
}

/// `f32` to `bf16` bits, rounding to nearest even (NaN stays NaN).
#[inline(always)]
fn to_bf16(x: f32) -> u16 {
    let bits = x.to_bits();
    let rounded = (bits.wrapping_add(0x7fff + ((bits >> 16) & 1)) >> 16) as u16;
    if x.is_nan() { ((bits >> 16) as u16) | 0x40 } else { rounded }
}

/// `bf16` bits to `f32` (exact).
#[cfg(test)]
fn from_bf16(b: u16) -> f32 {
    f32::from_bits((b as u32) << 16)
}

/// A `(k, n)` weight matrix in bf16, packed tile by tile: for each 16-column strip, for
/// each 32-row step of `k`, one tile of 16 rows, row `r` holding for each column `c` the
/// pair `(w[2r][c], w[2r + 1][c])`.
#[derive(Clone)]
pub struct PackedBf16 {
    k: usize,
    n: usize,
    tiles: Vec<u16>,
}

impl std::fmt::Debug for PackedBf16 {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PackedBf16").field("k", &self.k).field("n", &self.n).finish_non_exhaustive()
    }
}

impl PackedBf16 {
    /// Packs `w`, `(k, n)` row-major. `None` unless `k` and `n` are positive multiples
    /// of 32 and `w` holds `k · n` values (the encoder then stays in f32 for it).
    pub fn pack(w: &[f32], k: usize, n: usize) -> Option<Self> {
        if k == 0 || n == 0 || !k.is_multiple_of(TILE_K) || !n.is_multiple_of(BLOCK) || w.len() != k * n {
            return None;
        }
        let steps = k / TILE_K;
        let mut tiles = vec![0u16; k * n];
        for strip in 0..n / TILE_N {
            for step in 0..steps {
                let tile = &mut tiles[(strip * steps + step) * TILE_LEN..][..TILE_LEN];
                for r in 0..TILE_ROWS {
                    for c in 0..TILE_N {
                        for p in 0..2 {
                            tile[r * TILE_K + c * 2 + p] = to_bf16(w[(step * TILE_K + 2 * r + p) * n + strip * TILE_N + c]);
                        }
                    }
                }
            }
        }
        Some(Self { k, n, tiles })
    }

    /// Rows of the matrix (the products' inner dimension).
    pub fn k(&self) -> usize {
        self.k
    }

    /// Columns of the matrix.
    pub fn n(&self) -> usize {
        self.n
    }

    /// The packed tile for 16-column strip `strip` and 32-row step `step`.
    fn tile(&self, strip: usize, step: usize) -> *const u16 {
        self.tiles[(strip * (self.k / TILE_K) + step) * TILE_LEN..].as_ptr()
    }
}

/// The tile configuration of every block: eight tiles of 16 rows × 64 bytes
/// (`tmm0..3` the result, `tmm4..5` rows of `x`, `tmm6..7` strips of `w`).
#[repr(C, align(64))]
struct TileConfig {
    palette: u8,
    start_row: u8,
    reserved: [u8; 14],
    colsb: [u16; 16],
    rows: [u8; 16],
}

impl TileConfig {
    fn blocks() -> Self {
        let mut config = Self { palette: 1, start_row: 0, reserved: [0; 14], colsb: [0; 16], rows: [0; 16] };
        for t in 0..8 {
            config.colsb[t] = 64;
            config.rows[t] = TILE_ROWS as u8;
        }
        config
    }
}

/// A pointer to the result, shared by tasks that write disjoint blocks of it.
#[derive(Clone, Copy)]
struct Out(*mut f32);
// SAFETY: every task writes only its own blocks (distinct rows × columns) of the buffer,
// which outlives the parallel loop.
unsafe impl Send for Out {}
unsafe impl Sync for Out {}

/// `x (rows, k) · w (k, n)`, row-major f32 in and out, on the current rayon pool.
///
/// # Panics
/// If [`available`] is false, or `x` does not hold `rows · w.k()` values.
pub fn matmul(x: &[f32], rows: usize, w: &PackedBf16) -> Vec<f32> {
    assert!(available(), "AMX bf16 is not available in this process");
    let (k, n) = (w.k, w.n);
    assert_eq!(x.len(), rows * k, "x is not (rows, k)");
    if rows == 0 {
        return Vec::new();
    }
    let padded = rows.div_ceil(BLOCK) * BLOCK;

    // x in bf16, padded with zero rows to whole blocks.
    let mut a = vec![0u16; padded * k];
    a[..rows * k].par_chunks_mut(BLOCK * k).zip(x.par_chunks(BLOCK * k)).for_each(|(dst, src)| convert(src, dst));

    // Tasks: a block of 32 rows × a run of 32-column pairs; the runs are shortened when
    // there are too few row blocks to keep every thread busy.
    let row_blocks = padded / BLOCK;
    let pairs = n / BLOCK;
    let wanted = 4 * rayon::current_num_threads();
    let runs = wanted.div_ceil(row_blocks).clamp(1, pairs);
    let per_run = pairs.div_ceil(runs);
    let runs = pairs.div_ceil(per_run);

    let mut c = vec![0f32; padded * n];
    let out = Out(c.as_mut_ptr());
    (0..row_blocks * runs).into_par_iter().for_each(|task| {
        let (block, run) = (task / runs, task % runs);
        let first = run * per_run;
        let last = (first + per_run).min(pairs);
        // SAFETY: `available()` holds (asserted above); the block's rows lie within `a`
        // and `c` (both padded to whole blocks), its columns within `n`, and no other
        // task writes these rows × columns.
        unsafe { block_product(&a[block * BLOCK * k..(block + 1) * BLOCK * k], k, w, out, block * BLOCK, n, first..last) };
    });
    c.truncate(rows * n);
    c
}

/// `src` rounded to bf16 into `dst`.
#[inline(never)]
fn convert(src: &[f32], dst: &mut [u16]) {
    for (d, s) in dst.iter_mut().zip(src) {
        *d = to_bf16(*s);
    }
}

/// Rows `row..row + 32` of the result, columns of 32-column pairs `pairs`: `a` holds
/// those 32 rows of `x` in bf16.
///
/// # Safety
/// AMX must be available (CPU and kernel permission); `a` holds `32 · k` values; `out`
/// points to a `(≥ row + 32, n)` buffer of which this call alone writes the block.
#[inline(never)]
unsafe fn block_product(a: &[u16], k: usize, w: &PackedBf16, out: Out, row: usize, n: usize, pairs: std::ops::Range<usize>) {
    use std::arch::asm;
    debug_assert_eq!(a.len(), BLOCK * k);
    let config = TileConfig::blocks();
    let stride_a = k * 2;
    let stride_c = n * 4;
    let steps = k / TILE_K;
    // SAFETY (whole block): the caller guarantees the tile state is ours; every load
    // reads 16 rows of 64 bytes inside `a` or a packed tile, every store writes 16 rows
    // of 64 bytes inside this call's block of the result.
    unsafe {
        asm!("ldtilecfg [{}]", in(reg) &config, options(nostack, readonly));
        for pair in pairs {
            asm!("tilezero tmm0", "tilezero tmm1", "tilezero tmm2", "tilezero tmm3", options(nostack, nomem));
            for step in 0..steps {
                let a0 = a.as_ptr().add(step * TILE_K);
                let a1 = a0.add(TILE_ROWS * k);
                asm!(
                    "tileloadd tmm4, [{a0} + {sa}*1]",
                    "tileloadd tmm5, [{a1} + {sa}*1]",
                    "tileloadd tmm6, [{b0} + {sb}*1]",
                    "tileloadd tmm7, [{b1} + {sb}*1]",
                    "tdpbf16ps tmm0, tmm4, tmm6",
                    "tdpbf16ps tmm1, tmm4, tmm7",
                    "tdpbf16ps tmm2, tmm5, tmm6",
                    "tdpbf16ps tmm3, tmm5, tmm7",
                    a0 = in(reg) a0,
                    a1 = in(reg) a1,
                    b0 = in(reg) w.tile(2 * pair, step),
                    b1 = in(reg) w.tile(2 * pair + 1, step),
                    sa = in(reg) stride_a,
                    sb = in(reg) 64usize,
                    options(nostack, readonly),
                );
            }
            let c0 = out.0.add(row * n + pair * BLOCK);
            let c1 = c0.add(TILE_ROWS * n);
            asm!(
                "tilestored [{c0} + {sc}*1], tmm0",
                "tilestored [{c0r} + {sc}*1], tmm1",
                "tilestored [{c1} + {sc}*1], tmm2",
                "tilestored [{c1r} + {sc}*1], tmm3",
                c0 = in(reg) c0,
                c0r = in(reg) c0.add(TILE_N),
                c1 = in(reg) c1,
                c1r = in(reg) c1.add(TILE_N),
                sc = in(reg) stride_c,
                options(nostack),
            );
        }
        asm!("tilerelease", options(nostack, nomem));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A deterministic pseudo-random matrix in [-1, 1).
    fn matrix(len: usize, seed: u32) -> Vec<f32> {
        let mut s = seed.wrapping_mul(2_654_435_761).max(1);
        (0..len)
            .map(|_| {
                s ^= s << 13;
                s ^= s >> 17;
                s ^= s << 5;
                (s as f32 / u32::MAX as f32) * 2.0 - 1.0
            })
            .collect()
    }

    /// The product of the bf16-rounded inputs, summed in f64.
    fn reference(x: &[f32], rows: usize, w: &[f32], k: usize, n: usize) -> Vec<f32> {
        let r = |v: f32| from_bf16(to_bf16(v)) as f64;
        let mut c = vec![0f32; rows * n];
        for i in 0..rows {
            for j in 0..n {
                c[i * n + j] = (0..k).map(|p| r(x[i * k + p]) * r(w[p * n + j])).sum::<f64>() as f32;
            }
        }
        c
    }

    #[test]
    fn bf16_rounds_to_nearest_even() {
        assert_eq!(to_bf16(1.0), 0x3f80);
        // 1 + 2^-8 is halfway between 1 and 1 + 2^-7: ties go to the even mantissa (1.0).
        assert_eq!(to_bf16(f32::from_bits(0x3f80_8000)), 0x3f80);
        // Just above halfway rounds up.
        assert_eq!(to_bf16(f32::from_bits(0x3f80_8001)), 0x3f81);
        // Halfway with an odd mantissa rounds up to even.
        assert_eq!(to_bf16(f32::from_bits(0x3f81_8000)), 0x3f82);
        assert_eq!(from_bf16(to_bf16(-2.5)), -2.5);
        assert!(from_bf16(to_bf16(f32::NAN)).is_nan());
        assert_eq!(from_bf16(to_bf16(f32::INFINITY)), f32::INFINITY);
    }

    #[test]
    fn packing_refuses_shapes_the_tiles_cannot_cover() {
        assert!(PackedBf16::pack(&[0.0; 32 * 48], 32, 48).is_none());
        assert!(PackedBf16::pack(&[0.0; 40 * 32], 40, 32).is_none());
        assert!(PackedBf16::pack(&[0.0; 10], 32, 32).is_none());
        assert!(PackedBf16::pack(&[0.0; 64 * 32], 64, 32).is_some());
    }

    #[test]
    fn the_product_matches_the_rounded_inputs_product() {
        if !available() {
            eprintln!("no AMX bf16 on this machine or kernel: the product is not run here (the encoder stays in f32)");
            return;
        }
        // Rows that are not a multiple of the block, one row, several k steps, several
        // column pairs; on one thread and on the global pool.
        for (rows, k, n) in [(1, 32, 32), (17, 64, 96), (45, 384, 64), (130, 96, 1536)] {
            let x = matrix(rows * k, rows as u32);
            let w = matrix(k * n, n as u32 + 7);
            let packed = PackedBf16::pack(&w, k, n).expect("a packable shape");
            let want = reference(&x, rows, &w, k, n);
            for got in [
                matmul(&x, rows, &packed),
                rayon::ThreadPoolBuilder::new().num_threads(1).build().unwrap().install(|| matmul(&x, rows, &packed)),
            ] {
                assert_eq!(got.len(), rows * n);
                for (i, (g, e)) in got.iter().zip(&want).enumerate() {
                    // f32 sums of exact bf16 products, in another order than f64's.
                    assert!((g - e).abs() <= 1e-4 * (k as f32).sqrt(), "({rows},{k},{n}) element {i}: {g} vs {e}");
                }
            }
        }
    }
}
