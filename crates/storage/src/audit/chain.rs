//! The audit chain's hashes: how each event is bound to the one before it,
//! under which key, and how the whole chain is checked.
//!
//! `hash = HMAC-SHA-256(audit key, prev_hash ‖ "\n" ‖ canonical JSON)`, the
//! audit key derived from the master key (HKDF-SHA-256, RFC 5869), so that
//! nobody with only database access can rewrite an event and recompute the
//! links after it.
//!
//! Chains written before the key existed used plain SHA-256 over the same
//! input. They are never rewritten: on the first start with a key,
//! [`anchor`] checks the unkeyed chain up to its head and appends one
//! `audit.chain.anchored` event recording that head, the first keyed link.
//! Which scheme an event uses follows from its position: events before the
//! (first) checkpoint are unkeyed, the checkpoint and everything after it
//! keyed; a chain without a checkpoint is keyed from its first event.

use super::{Actor, AuditRow, EventType, GENESIS_HASH, NewAuditEvent, PG_AUDIT_LOCK, insert};
use crate::clock::rfc3339;
use crate::db::DbConnection;
use crate::error::StorageError;
use crate::schema::audit_events;
use chrono::NaiveDateTime;
use diesel::prelude::*;
use openssl::md::Md;
use openssl::pkey::Id;
use openssl::pkey_ctx::PkeyCtx;
use serde::Serialize;
use serde_json::Value;
use sha2::{Digest, Sha256};

/// The HKDF `info` of the audit key: a label no other use of the master key
/// shares, so the derived key is independent of every other one (RFC 5869 §3.2).
const AUDIT_KEY_INFO: &[u8] = b"trusec audit chain hmac-sha256 v1";

/// The key of the audit chain's HMAC, derived from the master key.
#[derive(Clone)]
pub struct AuditKey([u8; 32]);

impl std::fmt::Debug for AuditKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("AuditKey(..)")
    }
}

impl AuditKey {
    /// HKDF-SHA-256 (RFC 5869) of the master key, with no salt (the master
    /// key is already uniformly random, §3.1) and the audit label as `info`.
    ///
    /// # Errors
    /// OpenSSL failures.
    pub fn derive(master_key: &[u8; 32]) -> Result<Self, StorageError> {
        let mut out = [0u8; 32];
        hkdf_sha256(master_key, AUDIT_KEY_INFO, &mut out).map_err(StorageError::backend)?;
        Ok(Self(out))
    }

    /// The key as stored in `deployment_secrets` (sealed there).
    pub(crate) fn from_bytes(bytes: [u8; 32]) -> Self {
        Self(bytes)
    }

    /// The key's bytes, to seal them.
    pub(crate) fn bytes(&self) -> &[u8; 32] {
        &self.0
    }
}

/// HKDF-SHA-256 (extract then expand, RFC 5869 §2) with an empty salt, by OpenSSL.
fn hkdf_sha256(ikm: &[u8], info: &[u8], out: &mut [u8]) -> Result<(), openssl::error::ErrorStack> {
    let mut ctx = PkeyCtx::new_id(Id::HKDF)?;
    ctx.derive_init()?;
    ctx.set_hkdf_md(Md::sha256())?;
    ctx.set_hkdf_key(ikm)?;
    if !info.is_empty() {
        ctx.add_hkdf_info(info)?;
    }
    ctx.derive(Some(out))?;
    Ok(())
}

/// How an event's hash is computed.
#[derive(Clone, Copy, Debug)]
pub enum Hashing<'a> {
    /// Plain SHA-256: events written before the chain was anchored.
    Unkeyed,
    /// HMAC-SHA-256 under the audit key.
    Keyed(&'a AuditKey),
}

/// The last event of a chain, as `trusec audit verify` prints it and
/// `--expect-head` takes it: `SEQ:HASH`. An empty chain's head is
/// `0:` followed by the genesis hash.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct Head {
    pub seq: i64,
    pub hash: String,
}

impl Head {
    fn genesis() -> Self {
        Self {
            seq: 0,
            hash: GENESIS_HASH.to_owned(),
        }
    }

    /// Parses `SEQ:HASH` (a non-negative number, 64 lower-case hex digits).
    ///
    /// # Errors
    /// A message saying what is wrong.
    pub fn parse(text: &str) -> Result<Self, String> {
        let (seq, hash) = text
            .split_once(':')
            .ok_or("expected SEQ:HASH, as `trusec audit verify` prints it")?;
        let seq: i64 = seq
            .parse()
            .ok()
            .filter(|s| *s >= 0)
            .ok_or("SEQ must be a non-negative number")?;
        if hash.len() != 64 || !hash.bytes().all(|b| matches!(b, b'0'..=b'9' | b'a'..=b'f')) {
            return Err("HASH must be 64 lower-case hex digits".into());
        }
        Ok(Self {
            seq,
            hash: hash.to_owned(),
        })
    }
}

impl std::fmt::Display for Head {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}:{}", self.seq, self.hash)
    }
}

impl AuditRow {
    /// The hash this row should carry given its `prev_hash`.
    ///
    /// # Errors
    /// When the data column is not JSON, or OpenSSL fails.
    pub fn compute_hash(&self, hashing: Hashing<'_>) -> Result<String, StorageError> {
        let data: Value = serde_json::from_str(&self.data)?;
        self.compute_hash_of(&data, hashing)
    }

    /// [`Self::compute_hash`] with the data column already parsed (`data`
    /// is what `self.data` holds): a new row's, without reading it back.
    pub(crate) fn compute_hash_of(
        &self,
        data: &Value,
        hashing: Hashing<'_>,
    ) -> Result<String, StorageError> {
        let body = serde_json::json!({
            "id": self.id,
            "seq": self.seq,
            "type": self.event_type,
            "environment": self.environment_id,
            "actor": {"type": self.actor_type, "id": self.actor_id},
            "user_id": self.user_id,
            "ip": self.ip,
            "user_agent": self.user_agent,
            "outcome": self.outcome,
            "data": data,
            "created_at": rfc3339(self.created_at),
        });
        let mut canonical = String::new();
        write_canonical(&body, &mut canonical)?;
        let parts = [self.prev_hash.as_bytes(), b"\n", canonical.as_bytes()];
        match hashing {
            Hashing::Unkeyed => {
                let mut hasher = Sha256::new();
                for part in parts {
                    hasher.update(part);
                }
                Ok(hex::encode(hasher.finalize()))
            }
            Hashing::Keyed(key) => {
                let mac =
                    crate::secrets::hmac_sha256(&key.0, &parts).map_err(StorageError::backend)?;
                Ok(hex::encode(mac))
            }
        }
    }

    /// Whether the stored hash is the one `hashing` gives (constant time).
    fn hash_matches(&self, hashing: Hashing<'_>) -> bool {
        self.compute_hash(hashing)
            .is_ok_and(|h| crate::secrets::constant_time_eq(h.as_bytes(), self.hash.as_bytes()))
    }
}

/// Canonical JSON: object keys sorted at every depth, no whitespace; the same
/// value always yields the same bytes whatever map order serde_json was built
/// with.
pub(super) fn write_canonical(v: &Value, out: &mut String) -> Result<(), StorageError> {
    match v {
        Value::Object(map) => {
            let mut keys: Vec<&String> = map.keys().collect();
            keys.sort();
            out.push('{');
            for (i, k) in keys.into_iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                out.push_str(&serde_json::to_string(k)?);
                out.push(':');
                if let Some(v) = map.get(k) {
                    write_canonical(v, out)?;
                }
            }
            out.push('}');
        }
        Value::Array(items) => {
            out.push('[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                write_canonical(item, out)?;
            }
            out.push(']');
        }
        scalar => out.push_str(&serde_json::to_string(scalar)?),
    }
    Ok(())
}

/// The seq of the checkpoint that switched the chain to keyed hashes.
fn checkpoint_seq(conn: &mut DbConnection) -> Result<Option<i64>, StorageError> {
    Ok(audit_events::table
        .filter(audit_events::event_type.eq(EventType::AuditChainAnchored))
        .select(audit_events::seq)
        .order(audit_events::seq.asc())
        .first(conn)
        .optional()?)
}

/// What [`anchor`] found (and did).
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Anchoring {
    /// No events yet: the chain is keyed from its first event.
    Empty,
    /// The last event verifies under this key: nothing to do.
    Keyed,
    /// An unkeyed chain was found and a checkpoint appended after its head.
    Anchored {
        previous_head: Head,
        /// Whether the unkeyed part verified (a broken one is recorded as
        /// such in the checkpoint, never blessed: `verify` still reports it).
        intact: bool,
    },
    /// The last event verifies neither under this key nor, on a chain that
    /// was never anchored, unkeyed: the log was written under another
    /// master key, or its tail was tampered with. Nothing is written.
    TailUnverified { seq: i64 },
}

/// Makes the chain ready for keyed appends: on the first start with a key,
/// checks the unkeyed chain up to its head and appends the checkpoint event
/// (`audit.chain.anchored`) whose hash is the first keyed one. Idempotent,
/// and serialised with every other writer.
///
/// # Errors
/// Backend failures.
pub fn anchor(
    conn: &mut DbConnection,
    key: &AuditKey,
    now: NaiveDateTime,
) -> Result<Anchoring, StorageError> {
    conn.transaction(|conn| {
        crate::db::serialize_writers(conn, PG_AUDIT_LOCK)?;
        let tail: Option<AuditRow> = audit_events::table
            .select(AuditRow::as_select())
            .order(audit_events::seq.desc())
            .first(conn)
            .optional()?;
        let Some(tail) = tail else {
            return Ok(Anchoring::Empty);
        };
        if tail.hash_matches(Hashing::Keyed(key)) {
            return Ok(Anchoring::Keyed);
        }
        if !tail.hash_matches(Hashing::Unkeyed)
            || checkpoint_seq(conn)?.is_some()
            || prune_point(conn)?.is_some()
        {
            return Ok(Anchoring::TailUnverified { seq: tail.seq });
        }
        let previous_head = Head {
            seq: tail.seq,
            hash: tail.hash.clone(),
        };
        // Everything up to the head is unkeyed.
        let intact = walk(conn, key, Walk::unkeyed_through(tail.seq))?
            .first_broken
            .is_none();
        let event = NewAuditEvent::new(EventType::AuditChainAnchored, None, Actor::system()).data(
            serde_json::json!({
                "previous_head": previous_head.to_string(),
                "previous_scheme": "sha256",
                "scheme": "hmac-sha256",
                "previous_chain": if intact { "verified" } else { "broken" },
            }),
        );
        insert(conn, key, &[event], now, (tail.seq, tail.hash))?;
        Ok(Anchoring::Anchored {
            previous_head,
            intact,
        })
    })
}

/// The result of walking the chain.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct ChainReport {
    pub checked: u64,
    /// The last event that verified (the genesis head on an empty chain).
    pub head: Head,
    /// The checkpoint where the chain switched to keyed hashes, if it did.
    pub anchored_at: Option<i64>,
    /// Where the chain starts after `trusec audit prune`: the last pruned
    /// event, as the latest `audit.chain.pruned` event recorded it.
    pub pruned_through: Option<Head>,
    pub first_broken: Option<BrokenLink>,
}

#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct BrokenLink {
    pub seq: i64,
    pub id: String,
    pub reason: String,
}

impl BrokenLink {
    fn at(seq: i64, reason: String) -> Self {
        Self {
            seq,
            id: String::new(),
            reason,
        }
    }
}

/// Walks the whole chain in `seq` order, in batches, and reports the first
/// event whose `prev_hash`, `hash` or position does not match: unkeyed up
/// to the checkpoint, keyed from it on. A pruned chain starts after the
/// head its latest `audit.chain.pruned` event names (that event is itself a
/// keyed link further on, so the start cannot be moved without breaking
/// it). With `expect`, the chain must also still hold that event with that
/// hash (a deleted tail or rewritten history fails even when what is left
/// links up); an `expect` older than the prune point is satisfied by the
/// chain verifying from there.
///
/// # Errors
/// Backend failures.
pub fn verify_chain(
    conn: &mut DbConnection,
    key: &AuditKey,
    expect: Option<&Head>,
) -> Result<ChainReport, StorageError> {
    let anchored_at = checkpoint_seq(conn)?;
    let start = match chain_start(conn)? {
        Ok(start) => start,
        Err(broken) => {
            return Ok(ChainReport {
                checked: 0,
                head: Head::genesis(),
                anchored_at,
                pruned_through: None,
                first_broken: Some(broken),
            });
        }
    };
    let walk_from = Walk {
        start: start.clone().unwrap_or_else(Head::genesis),
        keyed_from: anchored_at,
        expect,
        through: None,
    };
    let mut report = walk(conn, key, walk_from)?;
    report.pruned_through = start;
    if let (Some(expect), None) = (expect, &report.first_broken)
        && expect.seq > report.head.seq
    {
        report.first_broken = Some(BrokenLink::at(
            expect.seq,
            format!(
                "the expected head {expect} is not in the chain, which ends at event {}: events were removed",
                report.head.seq
            ),
        ));
    }
    Ok(report)
}

/// Where the chain starts: after the head the latest prune recorded
/// (`None`: never pruned, it starts at genesis); a broken link when that
/// record does not name one.
fn chain_start(conn: &mut DbConnection) -> Result<Result<Option<Head>, BrokenLink>, StorageError> {
    Ok(match prune_point(conn)? {
        None => Ok(None),
        Some(Ok(head)) => Ok(Some(head)),
        Some(Err(seq)) => Err(BrokenLink::at(
            seq,
            "the audit.chain.pruned event does not name the head it pruned through".to_owned(),
        )),
    })
}

/// The head the latest `audit.chain.pruned` event pruned through, if the
/// chain was ever pruned; `Err(seq)` when that event's data does not name
/// one.
fn prune_point(conn: &mut DbConnection) -> Result<Option<Result<Head, i64>>, StorageError> {
    let latest: Option<(i64, String)> = audit_events::table
        .filter(audit_events::event_type.eq(EventType::AuditChainPruned))
        .select((audit_events::seq, audit_events::data))
        .order(audit_events::seq.desc())
        .first(conn)
        .optional()?;
    Ok(latest.map(|(seq, data)| {
        serde_json::from_str::<PruneRecord>(&data)
            .ok()
            .and_then(|r| Head::parse(&r.pruned_through).ok())
            .ok_or(seq)
    }))
}

/// The data of an `audit.chain.pruned` event.
#[derive(serde::Deserialize)]
struct PruneRecord {
    pruned_through: String,
}

/// Which part of the chain [`walk`] checks, and how.
struct Walk<'a> {
    /// The link before the first event to check.
    start: Head,
    /// Events from this seq on are keyed (all of them without it).
    keyed_from: Option<i64>,
    expect: Option<&'a Head>,
    /// Stop after this event.
    through: Option<i64>,
}

impl Walk<'_> {
    /// The whole chain up to `seq`, all of it unkeyed.
    fn unkeyed_through(seq: i64) -> Self {
        Self {
            start: Head::genesis(),
            keyed_from: Some(seq + 1),
            expect: None,
            through: Some(seq),
        }
    }
}

/// Walks the chain as `how` says.
fn walk(
    conn: &mut DbConnection,
    key: &AuditKey,
    how: Walk<'_>,
) -> Result<ChainReport, StorageError> {
    const BATCH: i64 = 1000;
    let mut report = ChainReport {
        checked: 0,
        head: how.start,
        anchored_at: how.keyed_from,
        pruned_through: None,
        first_broken: None,
    };
    if let Some(expect) = how.expect
        && expect.seq == report.head.seq
        && expect.hash != report.head.hash
    {
        report.first_broken = Some(BrokenLink::at(
            expect.seq,
            format!(
                "event {} does not carry the expected hash {}: history was rewritten",
                expect.seq, expect.hash
            ),
        ));
        return Ok(report);
    }
    loop {
        let mut query = audit_events::table
            .filter(audit_events::seq.gt(report.head.seq))
            .select(AuditRow::as_select())
            .order(audit_events::seq.asc())
            .limit(BATCH)
            .into_boxed();
        if let Some(through) = how.through {
            query = query.filter(audit_events::seq.le(through));
        }
        let rows: Vec<AuditRow> = query.load(conn)?;
        if rows.is_empty() {
            return Ok(report);
        }
        for row in rows {
            if let Some(reason) = check_link(&row, &report.head, key, how.keyed_from, how.expect) {
                report.first_broken = Some(BrokenLink {
                    seq: row.seq,
                    id: row.id,
                    reason,
                });
                return Ok(report);
            }
            report.checked += 1;
            report.head = Head {
                seq: row.seq,
                hash: row.hash,
            };
        }
    }
}

/// What [`prune`] did.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Pruning {
    /// No event is older than the date (or another prune got there first).
    Nothing,
    /// `events` events up to and including `through` were deleted, and one
    /// `audit.chain.pruned` event recording `through` was appended.
    Pruned { events: u64, through: Head },
    /// The part to prune (or its link to the rest) does not verify: nothing
    /// was deleted, so the evidence stays for `trusec audit verify`.
    Refused(BrokenLink),
}

/// Deletes the oldest events — every event up to the last one before the
/// first event created at or after `before` — after checking that they
/// verify and link to the rest, and appends one `audit.chain.pruned` event
/// naming the last deleted head, where [`verify_chain`] starts from then
/// on. Only that part is walked (the check scales with what is deleted, not
/// with the log); the deletion and the record are one transaction,
/// serialised with every writer, so two instances pruning at once delete
/// once.
///
/// # Errors
/// Backend failures.
pub fn prune(
    conn: &mut DbConnection,
    key: &AuditKey,
    before: NaiveDateTime,
    now: NaiveDateTime,
) -> Result<Pruning, StorageError> {
    let through_seq = last_before(conn, before)?;
    let start = match chain_start(conn)? {
        Ok(start) => start.unwrap_or_else(Head::genesis),
        Err(broken) => return Ok(Pruning::Refused(broken)),
    };
    if through_seq <= start.seq {
        return Ok(Pruning::Nothing);
    }
    // The pruned part and the first kept event's link to it.
    let keyed_from = checkpoint_seq(conn)?;
    let checked = walk(
        conn,
        key,
        Walk {
            start,
            keyed_from,
            expect: None,
            through: Some(through_seq + 1),
        },
    )?;
    if let Some(broken) = checked.first_broken {
        return Ok(Pruning::Refused(broken));
    }
    delete_through(conn, key, through_seq, before, now)
}

/// The seq of the last event to prune: the one before the first event
/// created at or after `before`, or the last event: what goes is always a
/// prefix of the chain, even where instances' clocks disagree and
/// `created_at` is not in seq order.
fn last_before(conn: &mut DbConnection, before: NaiveDateTime) -> Result<i64, StorageError> {
    let first_kept: Option<i64> = audit_events::table
        .filter(audit_events::created_at.ge(before))
        .select(audit_events::seq)
        .order(audit_events::seq.asc())
        .first(conn)
        .optional()?;
    Ok(match first_kept {
        Some(seq) => seq - 1,
        None => audit_events::table
            .select(diesel::dsl::max(audit_events::seq))
            .first::<Option<i64>>(conn)?
            .unwrap_or(0),
    })
}

/// Deletes every event up to `through_seq` and appends the
/// `audit.chain.pruned` record naming it, in one transaction serialised
/// with every writer; `Nothing` when another instance pruned it meanwhile.
fn delete_through(
    conn: &mut DbConnection,
    key: &AuditKey,
    through_seq: i64,
    before: NaiveDateTime,
    now: NaiveDateTime,
) -> Result<Pruning, StorageError> {
    conn.transaction(|conn| {
        crate::db::serialize_writers(conn, PG_AUDIT_LOCK)?;
        let through: Head = audit_events::table
            .filter(audit_events::seq.eq(through_seq))
            .select((audit_events::seq, audit_events::hash))
            .first::<(i64, String)>(conn)
            .optional()?
            .map(|(seq, hash)| Head { seq, hash })
            // Another instance pruned it meanwhile.
            .ok_or(StorageError::NotFound)?;
        let tail: (i64, String) = audit_events::table
            .select((audit_events::seq, audit_events::hash))
            .order(audit_events::seq.desc())
            .first(conn)?;
        let deleted = diesel::delete(audit_events::table.filter(audit_events::seq.le(through_seq)))
            .execute(conn)?;
        let event = NewAuditEvent::new(EventType::AuditChainPruned, None, Actor::system()).data(
            serde_json::json!({
                "pruned_through": through.to_string(),
                "events": deleted,
                "before": rfc3339(before),
            }),
        );
        insert(conn, key, &[event], now, tail)?;
        Ok(Pruning::Pruned {
            events: deleted as u64,
            through,
        })
    })
    .or_else(|e| match e {
        StorageError::NotFound => Ok(Pruning::Nothing),
        other => Err(other),
    })
}

/// Why `row` does not follow `prev` in the chain, if it does not.
fn check_link(
    row: &AuditRow,
    prev: &Head,
    key: &AuditKey,
    anchored_at: Option<i64>,
    expect: Option<&Head>,
) -> Option<String> {
    let keyed = anchored_at.is_none_or(|at| row.seq >= at);
    if row.seq != prev.seq + 1 {
        return Some(format!("event {} is missing", prev.seq + 1));
    }
    if row.prev_hash != prev.hash {
        return Some("prev_hash does not match the previous event's hash".to_owned());
    }
    if !keyed {
        return (!row.hash_matches(Hashing::Unkeyed))
            .then(|| "hash does not match the event's content".to_owned());
    }
    if !row.hash_matches(Hashing::Keyed(key)) {
        return Some(
            if anchored_at.is_none() && row.hash_matches(Hashing::Unkeyed) {
                "the event has an unkeyed hash and no checkpoint precedes it: the log predates keyed \
             hashes and was never anchored (start `trusec serve` once), or it was rewritten"
                .to_owned()
            } else {
                "hash does not match the event's content (or the log was written under another \
             master key)"
                    .to_owned()
            },
        );
    }
    match expect {
        Some(e) if e.seq == row.seq && e.hash != row.hash => Some(format!(
            "event {} does not carry the expected hash {}: history was rewritten",
            row.seq, e.hash
        )),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn canonical_json_sorts_keys_at_every_depth() {
        let v = serde_json::json!({"b": 1, "a": {"d": [1, {"z": null, "y": "x"}], "c": true}});
        let mut out = String::new();
        write_canonical(&v, &mut out).unwrap();
        assert_eq!(out, r#"{"a":{"c":true,"d":[1,{"y":"x","z":null}]},"b":1}"#);
    }

    #[test]
    fn hkdf_matches_rfc_5869() {
        // RFC 5869 appendix A.3 (no salt, no info); the first 32 bytes of OKM.
        let mut okm = [0u8; 32];
        hkdf_sha256(&[0x0b; 22], b"", &mut okm).unwrap();
        assert_eq!(
            hex::encode(okm),
            "8da4e775a563c18f715f802a063c5a31b8a11f5c5ee1879ec3454e5f3c738d2d"
        );
    }

    #[test]
    fn the_audit_key_depends_on_the_master_key() {
        let a = AuditKey::derive(&[0u8; 32]).unwrap();
        let b = AuditKey::derive(&[1u8; 32]).unwrap();
        assert_ne!(a.0, b.0);
        assert_eq!(a.0, AuditKey::derive(&[0u8; 32]).unwrap().0);
        assert_ne!(a.0, [0u8; 32]);
        assert_eq!(format!("{a:?}"), "AuditKey(..)");
    }

    #[test]
    fn heads_parse_as_printed() {
        let head = Head {
            seq: 12,
            hash: "ab".repeat(32),
        };
        assert_eq!(Head::parse(&head.to_string()), Ok(head));
        for bad in [
            "12",
            "x:ab",
            "-1:ab",
            &format!("1:{}", "AB".repeat(32)),
            "1:abc",
        ] {
            assert!(Head::parse(bad).is_err(), "{bad}");
        }
    }
}
