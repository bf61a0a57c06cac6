use super::*;

#[test]
fn a_nonce_is_used_once_across_reopening_and_swept_after_expiry() {
    let dir = tempfile::tempdir().unwrap();
    {
        let store = Store::open(dir.path()).unwrap();
        assert!(store.consume_nonce("abc", 100, 10).unwrap());
        assert!(!store.consume_nonce("abc", 100, 20).unwrap());
        assert!(store.consume_nonce("old", 50, 10).unwrap());
    }
    let store = Store::open(dir.path()).unwrap();
    assert!(!store.consume_nonce("abc", 100, 30).unwrap());
    assert_eq!(store.used_nonces().unwrap(), 2);
    // Recording another after "old" expired drops it.
    assert!(store.consume_nonce("new", 200, 60).unwrap());
    assert_eq!(store.used_nonces().unwrap(), 2);
}

#[test]
fn sessions_survive_reopening_and_can_be_revoked() {
    let dir = tempfile::tempdir().unwrap();
    let record = SessionRecord {
        id: "s1".into(),
        address: grid_policy_sdk::Address::ZERO,
        expires_at: 99,
        scopes: None,
        created_at: 1,
        revoked: false,
    };
    {
        let store = Store::open(dir.path()).unwrap();
        store.put_session(&record).unwrap();
    }
    let store = Store::open(dir.path()).unwrap();
    assert_eq!(store.session("s1").unwrap(), Some(record));
    assert!(store.revoke_session("s1").unwrap());
    assert!(store.session("s1").unwrap().unwrap().revoked);
    assert!(!store.revoke_session("nope").unwrap());
}

#[test]
fn ended_sessions_are_dropped_when_a_new_one_is_written() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path()).unwrap();
    let session = |id: &str, created_at: u64, expires_at: u64| SessionRecord {
        id: id.into(),
        address: grid_policy_sdk::Address::ZERO,
        expires_at,
        scopes: None,
        created_at,
        revoked: false,
    };
    store.put_session(&session("old", 0, 10)).unwrap();
    store.put_session(&session("live", 0, 100)).unwrap();
    store.put_session(&session("new", 50, 200)).unwrap();
    assert!(store.session("old").unwrap().is_none());
    assert!(store.session("live").unwrap().is_some());
    assert!(store.session("new").unwrap().is_some());
}

#[test]
fn a_cached_session_is_seen_revoked_at_once() {
    let dir = tempfile::tempdir().unwrap();
    let store = Store::open(dir.path()).unwrap();
    let record = SessionRecord {
        id: "s1".into(),
        address: grid_policy_sdk::Address::ZERO,
        expires_at: 99,
        scopes: None,
        created_at: 1,
        revoked: false,
    };
    store.put_session(&record).unwrap();
    assert!(
        !store.session("s1").unwrap().unwrap().revoked,
        "served from memory"
    );
    // Another handle on the same database shares the cache.
    let other = store.clone();
    assert!(other.revoke_session("s1").unwrap());
    assert!(store.session("s1").unwrap().unwrap().revoked);
    assert!(store.session("unknown").unwrap().is_none());
}
