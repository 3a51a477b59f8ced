//! QR codes drawn with Unicode half blocks: each character cell holds two
//! modules stacked vertically, so a code fits in half as many rows.

use qrcode::{Color, EcLevel, QrCode};

/// Light modules around the code; scanners need a margin to find it. (An
/// odd last row is padded with one more light row.)
const QUIET_ZONE: usize = 2;

/// The code as lines of text, drawn light-on-dark: a full block is two
/// light modules, a space two dark ones. Draw it with a light foreground on
/// a dark background. `None` if the data does not fit in a QR code.
pub fn half_block_lines(data: &[u8]) -> Option<Vec<String>> {
    let code = QrCode::with_error_correction_level(data, EcLevel::L).ok()?;
    let width = code.width();
    let colors = code.to_colors();
    let size = width + 2 * QUIET_ZONE;
    let light = |x: usize, y: usize| -> bool {
        if x < QUIET_ZONE || y < QUIET_ZONE || x >= width + QUIET_ZONE || y >= width + QUIET_ZONE {
            return true;
        }
        colors[(y - QUIET_ZONE) * width + (x - QUIET_ZONE)] == Color::Light
    };
    let lines = (0..size)
        .step_by(2)
        .map(|y| {
            (0..size)
                .map(|x| match (light(x, y), y + 1 >= size || light(x, y + 1)) {
                    (true, true) => '█',
                    (true, false) => '▀',
                    (false, true) => '▄',
                    (false, false) => ' ',
                })
                .collect()
        })
        .collect();
    Some(lines)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn draws_a_square_code() {
        let lines = half_block_lines(
            b"otpauth://totp/sfs:a%40example.com?secret=JBSWY3DPEHPK3PXP&issuer=sfs",
        )
        .expect("fits");
        let width = lines[0].chars().count();
        assert_eq!(lines.len(), width.div_ceil(2));
        assert!(lines.iter().all(|l| l.chars().count() == width));
        // The quiet zone is light all round.
        assert!(lines[0].chars().all(|c| c == '█'));
        assert!(lines
            .iter()
            .all(|l| l.starts_with("██") && l.ends_with("██")));
    }
}
