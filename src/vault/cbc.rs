//! AES-128-CBC encryption of several independent messages at once.
//!
//! CBC encryption is a chain: every block needs the ciphertext of the block
//! before it, so one message is encrypted at the *latency* of AES, one block
//! at a time, while the AES unit could work on several blocks in flight
//! (AES-NI: eight blocks in little more than the time of one). The vault's
//! chunks are independent tokens, each its own chain, so this module
//! encrypts block `j` of up to eight chunks in one parallel call. The output
//! is plain CBC: every message comes out exactly as it would alone.

use aes::cipher::consts::U16;
use aes::cipher::typenum::Unsigned;
use aes::cipher::{
    Block, BlockBackend, BlockClosure, BlockEncrypt, BlockSizeUser, ParBlocks, ParBlocksSizeUser,
};
use aes::Aes128;

const BLOCK: usize = 16;

/// One message to encrypt in place: its IV and its data, a whole number of
/// blocks.
pub(crate) struct Chain<'a> {
    pub iv: [u8; BLOCK],
    pub data: &'a mut [u8],
}

/// CBC-encrypts every chain in place. Panics if a chain's data is not a
/// whole number of blocks (a caller bug: the vault pads before it encrypts).
pub(crate) fn encrypt_chains(cipher: &Aes128, chains: &mut [Chain<'_>]) {
    for chain in chains.iter() {
        assert!(
            chain.data.len() % BLOCK == 0,
            "CBC input must be whole blocks"
        );
    }
    cipher.encrypt_with_backend(Lanes { chains });
}

/// Hands the chains to the cipher's backend, which says how many blocks it
/// encrypts at once.
struct Lanes<'c, 'd> {
    chains: &'c mut [Chain<'d>],
}

impl BlockSizeUser for Lanes<'_, '_> {
    type BlockSize = U16;
}

impl BlockClosure for Lanes<'_, '_> {
    fn call<B: BlockBackend<BlockSize = U16>>(self, backend: &mut B) {
        let width = <B as ParBlocksSizeUser>::ParBlocksSize::USIZE;
        for group in self.chains.chunks_mut(width) {
            encrypt_group(backend, group);
        }
    }
}

/// Encrypts at most one backend width of chains: side by side over the
/// blocks they all have, then what is left of each one alone. Each chain's
/// `iv` always holds the chain's last ciphertext block.
fn encrypt_group<B: BlockBackend<BlockSize = U16>>(backend: &mut B, group: &mut [Chain<'_>]) {
    let shared = if group.len() > 1 {
        group.iter().map(|c| c.data.len()).min().unwrap_or(0)
    } else {
        0
    };
    // Lanes past the group's end go through the cipher too, unused.
    let mut lanes = ParBlocks::<B>::default();
    for at in (0..shared).step_by(BLOCK) {
        for (lane, chain) in lanes.iter_mut().zip(group.iter()) {
            xor_into(lane, &chain.data[at..at + BLOCK], &chain.iv);
        }
        backend.proc_par_blocks_inplace(&mut lanes);
        for (lane, chain) in lanes.iter().zip(group.iter_mut()) {
            chain.data[at..at + BLOCK].copy_from_slice(lane);
            chain.iv.copy_from_slice(lane);
        }
    }
    for chain in group.iter_mut() {
        let mut block = Block::<B>::default();
        for at in (shared..chain.data.len()).step_by(BLOCK) {
            xor_into(&mut block, &chain.data[at..at + BLOCK], &chain.iv);
            backend.proc_block_inplace(&mut block);
            chain.data[at..at + BLOCK].copy_from_slice(&block);
            chain.iv.copy_from_slice(&block);
        }
    }
    // Both scratch buffers end holding ciphertext, never plaintext.
}

fn xor_into(out: &mut [u8], data: &[u8], iv: &[u8; BLOCK]) {
    for ((o, d), v) in out.iter_mut().zip(data).zip(iv) {
        *o = d ^ v;
    }
}

#[cfg(test)]
mod tests {
    use aes::cipher::{BlockEncryptMut, KeyInit, KeyIvInit};

    use super::*;

    /// The reference: each message through the `cbc` crate on its own.
    fn one_at_a_time(key: &[u8; 16], iv: &[u8; 16], data: &[u8]) -> Vec<u8> {
        let mut out = data.to_vec();
        let (blocks, _) = aes::cipher::inout::InOutBuf::from(&mut out[..]).into_chunks();
        cbc::Encryptor::<Aes128>::new(key.into(), iv.into()).encrypt_blocks_inout_mut(blocks);
        out
    }

    #[test]
    fn matches_cbc_one_message_at_a_time() {
        let key = [7u8; 16];
        let cipher = Aes128::new(&key.into());
        // Group sizes around the AES-NI width (8), equal and unequal
        // lengths, empty messages.
        for count in [0usize, 1, 2, 7, 8, 9, 17] {
            for uneven in [false, true] {
                let messages: Vec<(Vec<u8>, [u8; 16])> = (0..count)
                    .map(|i| {
                        let blocks = if uneven { (i * 5) % 11 } else { 6 };
                        let data = (0..blocks * BLOCK)
                            .map(|j| (i * 31 + j * 7) as u8)
                            .collect();
                        (data, [i as u8 ^ 0x5a; 16])
                    })
                    .collect();
                let expected: Vec<Vec<u8>> = messages
                    .iter()
                    .map(|(data, iv)| one_at_a_time(&key, iv, data))
                    .collect();
                let mut work: Vec<(Vec<u8>, [u8; 16])> = messages.clone();
                let mut chains: Vec<Chain<'_>> = work
                    .iter_mut()
                    .map(|(data, iv)| Chain { iv: *iv, data })
                    .collect();
                encrypt_chains(&cipher, &mut chains);
                drop(chains);
                for (i, ((got, _), want)) in work.iter().zip(&expected).enumerate() {
                    assert!(
                        got == want,
                        "{count} messages, uneven {uneven}: message {i} differs"
                    );
                }
            }
        }
    }

    #[test]
    #[should_panic(expected = "whole blocks")]
    fn refuses_a_partial_block() {
        let cipher = Aes128::new(&[0u8; 16].into());
        let mut data = [0u8; 17];
        encrypt_chains(
            &cipher,
            &mut [Chain {
                iv: [0; 16],
                data: &mut data,
            }],
        );
    }
}
