//! Writes waiting for their place in a file's new version (see `edit.rs`):
//! byte ranges by offset that never overlap, a newer write replacing the
//! bytes of older ones it covers, as a file's own bytes would be. Pure
//! bookkeeping, no I/O.
//!
//! What they hold is counted as its memory, not its payload: each range
//! costs [`RANGE_COST`] on top of its bytes (so a million one-byte writes
//! count as what they take), and the part of a range a newer write left is
//! copied out, so a few surviving bytes never keep a large write alive.

use std::collections::BTreeMap;

use bytes::Bytes;

/// What a range costs besides its bytes: its map entry and the heap block
/// that holds them.
const RANGE_COST: usize = 128;

#[derive(Debug, Default)]
pub(crate) struct Patches {
    /// Start offset → bytes; ranges never overlap.
    ranges: BTreeMap<u64, Bytes>,
    /// Bytes held in all.
    bytes: usize,
}

impl Patches {
    pub(crate) fn is_empty(&self) -> bool {
        self.ranges.is_empty()
    }

    /// Memory held, for the bound.
    pub(crate) fn cost(&self) -> usize {
        self.bytes + self.ranges.len() * RANGE_COST
    }

    /// Where the first range starts.
    pub(crate) fn start(&self) -> Option<u64> {
        self.ranges.keys().next().copied()
    }

    /// Where the last range ends.
    pub(crate) fn end(&self) -> Option<u64> {
        self.ranges
            .iter()
            .next_back()
            .map(|(&at, data)| at + data.len() as u64)
    }

    /// Lays `data` at `offset` over whatever was there.
    pub(crate) fn insert(&mut self, offset: u64, data: Bytes) {
        if data.is_empty() {
            return;
        }
        self.cut(offset, offset + data.len() as u64);
        self.bytes += data.len();
        self.ranges.insert(offset, data);
    }

    /// Removes and returns the first range.
    pub(crate) fn pop_first(&mut self) -> Option<(u64, Bytes)> {
        let (at, data) = self.ranges.pop_first()?;
        self.bytes -= data.len();
        Some((at, data))
    }

    /// Drops every byte at or after `len`.
    pub(crate) fn truncate(&mut self, len: u64) {
        self.cut(len, u64::MAX);
    }

    /// Copies what the ranges hold over `buf`, which stands for the bytes
    /// from `offset` on.
    pub(crate) fn overlay(&self, offset: u64, buf: &mut [u8]) {
        let end = offset + buf.len() as u64;
        let first = self
            .ranges
            .range(..=offset)
            .next_back()
            .map_or(offset, |(&at, _)| at);
        for (&at, data) in self.ranges.range(first..end) {
            let from = at.max(offset);
            let to = (at + data.len() as u64).min(end);
            if from >= to {
                continue;
            }
            let src = &data[(from - at) as usize..(to - at) as usize];
            buf[(from - offset) as usize..(to - offset) as usize].copy_from_slice(src);
        }
    }

    /// Removes the bytes in `start..end`, keeping the parts of ranges
    /// outside it.
    fn cut(&mut self, start: u64, end: u64) {
        let first = self
            .ranges
            .range(..start)
            .next_back()
            .filter(|(&at, data)| at + data.len() as u64 > start)
            .map_or(start, |(&at, _)| at);
        let touched: Vec<u64> = self.ranges.range(first..end).map(|(&at, _)| at).collect();
        for at in touched {
            let Some(data) = self.ranges.remove(&at) else {
                continue;
            };
            self.bytes -= data.len();
            let stop = at + data.len() as u64;
            if at < start {
                let head = Bytes::copy_from_slice(&data[..(start - at) as usize]);
                self.bytes += head.len();
                self.ranges.insert(at, head);
            }
            if stop > end {
                let tail = Bytes::copy_from_slice(&data[(end - at) as usize..]);
                self.bytes += tail.len();
                self.ranges.insert(end, tail);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::{Rng, SeedableRng};

    /// The same writes applied to a plain buffer: what the ranges must
    /// always equal.
    fn model_matches(patches: &Patches, model: &[Option<u8>]) {
        let mut buf = vec![0xEE; model.len()];
        patches.overlay(0, &mut buf);
        for (i, expected) in model.iter().enumerate() {
            match expected {
                Some(b) => assert_eq!(buf[i], *b, "byte {i}"),
                None => assert_eq!(buf[i], 0xEE, "byte {i} was never written"),
            }
        }
        assert_eq!(
            patches.bytes,
            model.iter().filter(|b| b.is_some()).count(),
            "bytes held"
        );
        assert_eq!(
            patches.cost(),
            patches.bytes + patches.ranges.len() * RANGE_COST
        );
        let mut last_end = 0;
        for (&at, data) in &patches.ranges {
            assert!(at >= last_end, "ranges overlap");
            assert!(!data.is_empty(), "an empty range");
            last_end = at + data.len() as u64;
        }
    }

    #[test]
    fn newer_writes_win_and_ranges_never_overlap() {
        let mut rng = rand::rngs::StdRng::seed_from_u64(7);
        for _ in 0..200 {
            let size = 64;
            let mut patches = Patches::default();
            let mut model = vec![None; size];
            for step in 0..30u8 {
                if rng.gen_ratio(1, 8) {
                    let len = rng.gen_range(0..size);
                    patches.truncate(len as u64);
                    model[len..].iter_mut().for_each(|b| *b = None);
                } else {
                    let at = rng.gen_range(0..size - 1);
                    let len = rng.gen_range(1..=(size - at).min(9));
                    let data: Vec<u8> = (0..len).map(|i| step.wrapping_mul(16) + i as u8).collect();
                    patches.insert(at as u64, Bytes::from(data.clone()));
                    for (i, b) in data.into_iter().enumerate() {
                        model[at + i] = Some(b);
                    }
                }
                model_matches(&patches, &model);
            }
            // Popping front to back hands every byte out once, in order.
            let mut out = vec![None; size];
            let mut last = 0;
            while let Some((at, data)) = patches.pop_first() {
                assert!(at >= last);
                last = at + data.len() as u64;
                for (i, b) in data.iter().enumerate() {
                    out[at as usize + i] = Some(*b);
                }
            }
            assert_eq!(out, model);
            assert_eq!(patches.cost(), 0);
        }
    }

    #[test]
    fn overlay_of_a_window_and_the_ends() {
        let mut patches = Patches::default();
        patches.insert(10, Bytes::from_static(b"abcdef"));
        patches.insert(20, Bytes::from_static(b"xy"));
        assert_eq!((patches.start(), patches.end()), (Some(10), Some(22)));
        let mut window = [b'.'; 8];
        patches.overlay(13, &mut window);
        assert_eq!(&window, b"def....x");
        let mut window = [b'.'; 4];
        patches.overlay(19, &mut window);
        assert_eq!(&window, b".xy.");
    }
}
