//! Entry points shared by the cargo-fuzz targets (`fuzz/`) and the corpus replay tests, so
//! what the fuzzer explores and what CI checks are the same code.

use base::Lsn;

use crate::record::{RECORD_HEADER_LEN, RecordHeader, RecordKind, WalRecord};

/// Decodes arbitrary bytes as a record header and as every kind of payload; must never panic.
/// Successful decodes must re-encode to an equal record.
pub fn decode_record_bytes(data: &[u8]) {
    if data.len() >= RECORD_HEADER_LEN {
        let mut h = [0u8; RECORD_HEADER_LEN];
        h.copy_from_slice(&data[..RECORD_HEADER_LEN]);
        if let Some(header) = RecordHeader::decode(&h) {
            let _ = header.plausible_at(Lsn(0x0100_0000));
            let _ = header.end_lsn();
            assert_eq!(RecordHeader::decode(&header.encode()), Some(header));
        }
    }
    let (kind_byte, payload) = match data.split_first() {
        Some((k, rest)) => (*k, rest),
        None => return,
    };
    let kinds = [
        RecordKind::Commit,
        RecordKind::TxnData,
        RecordKind::Abort,
        RecordKind::Checkpoint,
        RecordKind::EndOfRecovery,
    ];
    let kind = kinds[usize::from(kind_byte) % kinds.len()];
    if let Ok(rec) = WalRecord::decode(kind, payload) {
        let again = rec.encode();
        assert_eq!(WalRecord::decode(kind, &again).as_ref(), Ok(&rec));
    }
}
