//! `points-app rotate-field-keys`: every encrypted value moves to the current key, while a
//! server serves the same rows, without overwriting what the server changed; resumable.

use std::collections::HashMap;
use std::process::Output;

use diesel::prelude::*;
use diesel_async::RunQueryDsl;
use points_app::app::PageRequest;
use points_app::app::keys::{EncryptedColumn, aad};
use points_app::app::users::UserSearch;
use points_app::config::Settings;
use points_app::sandbox::keys::SANDBOX_APPID;
use points_app::sandbox::mini_api::openid_for;
use points_app::security::Phone;
use points_app::security::crypto::FieldCipher;
use points_app::storage::schema::{merchants, users};
use points_app::storage::users::{UserRow, now};
use points_app::storage::{self, Db};
use points_app::with_conn;
use serde_json::{Value, json};

use crate::cli::points_app;
use crate::helpers::{TestApp, TestDatabase, test_settings};
use crate::identity::{get_auth, login, signed, spawn_on};

const V2: &str = "v2:rotation-test-key-0123456789";

fn ring(settings: &Settings, list: Option<&str>) -> FieldCipher {
    let list = list.map(|l| secrecy::SecretString::from(l.to_string()));
    FieldCipher::new(list.as_ref(), &settings.field_key).unwrap()
}

fn user_phone(i: usize) -> String {
    format!("138{i:08}")
}

fn contact_phone(i: usize) -> String {
    format!("139{i:08}")
}

/// Rows written under the key ring `list` (`None`: only v1): `users` users, the first
/// `named` of them the sandbox's `rot<i>` (so they can sign in), and `merchants` merchants.
/// Returns the user ids and the merchant ids, in creation order.
async fn seed(
    db: &TestDatabase,
    list: Option<&str>,
    users: usize,
    named: usize,
    merchants: usize,
) -> (Vec<String>, Vec<String>) {
    let data = tempfile::tempdir().unwrap();
    let settings = test_settings(db, data.path());
    let fields = ring(&settings, list);
    let store = Db::connect(&settings).await.unwrap();
    let mut user_ids = Vec::new();
    for i in 0..users {
        let id = uuid::Uuid::now_v7().to_string();
        let phone = Phone::parse(&user_phone(i)).unwrap();
        let (key_id, cipher) = fields
            .encrypt(phone.as_str(), &aad(EncryptedColumn::UserPhone, &id))
            .unwrap();
        let openid = if i < named {
            openid_for(SANDBOX_APPID, &format!("rot{i}"))
        } else {
            format!("seeded-{id}")
        };
        let t = now();
        let row = UserRow {
            id: id.clone(),
            openid,
            unionid: None,
            nickname: Some(format!("user {i}")),
            avatar: None,
            phone_cipher: Some(cipher),
            phone_key_id: Some(key_id),
            phone_blind_index: Some(fields.blind_index(phone.as_str())),
            phone_masked: Some(phone.masked()),
            status: "active".into(),
            last_login_ip: None,
            last_login_at: None,
            created_at: t,
            updated_at: t,
        };
        storage::users::create_or_get(&store, row).await.unwrap();
        user_ids.push(id);
    }
    let mut merchant_ids = Vec::new();
    for i in 0..merchants {
        let id = uuid::Uuid::now_v7().to_string();
        let phone = Phone::parse(&contact_phone(i)).unwrap();
        let (key_id, cipher) = fields
            .encrypt(
                phone.as_str(),
                &aad(EncryptedColumn::MerchantContactPhone, &id),
            )
            .unwrap();
        let t = now();
        let row = storage::merchants::MerchantRow {
            id: id.clone(),
            owner_user_id: user_ids[i % user_ids.len()].clone(),
            merchant_name: format!("shop {i}"),
            contact_name: "Wang".into(),
            contact_phone_cipher: cipher,
            contact_phone_key_id: key_id,
            contact_phone_masked: phone.masked(),
            business_license: "91110000MA01ABCD2X".into(),
            address: "1 Chang'an Avenue".into(),
            status: "pending".into(),
            reviewed_by: None,
            reviewed_at: None,
            created_at: t,
            updated_at: t,
        };
        storage::merchants::insert(&store, &row).await.unwrap();
        merchant_ids.push(id);
    }
    (user_ids, merchant_ids)
}

/// (id, key id, ciphertext) of every stored value of the column.
async fn stored(db: &Db, column: EncryptedColumn) -> Vec<(String, String, String)> {
    let mut conn = db.conn().await.unwrap();
    with_conn!(&mut conn, |c| {
        match column {
            EncryptedColumn::UserPhone => users::table
                .filter(users::phone_cipher.is_not_null())
                .order(users::id)
                .select((
                    users::id,
                    users::phone_key_id.assume_not_null(),
                    users::phone_cipher.assume_not_null(),
                ))
                .load(c)
                .await
                .unwrap(),
            EncryptedColumn::MerchantContactPhone => merchants::table
                .order(merchants::id)
                .select((
                    merchants::id,
                    merchants::contact_phone_key_id,
                    merchants::contact_phone_cipher,
                ))
                .load(c)
                .await
                .unwrap(),
        }
    })
}

async fn count_under(db: &Db, key: &str) -> usize {
    let mut n = 0;
    for column in EncryptedColumn::ALL {
        n += stored(db, column)
            .await
            .iter()
            .filter(|(_, k, _)| k == key)
            .count();
    }
    n
}

/// `points-app rotate-field-keys ARGS` with the key ring `list` on `db`, as a process (on a
/// blocking thread, so a server on this thread keeps serving meanwhile).
async fn rotate(db_url: &str, list: &str, args: &[&str]) -> Output {
    let data = tempfile::tempdir().unwrap();
    let mut cmd = points_app(data.path(), db_url);
    cmd.env("APP_FIELD_KEYS", list)
        .arg("rotate-field-keys")
        .args(args);
    let out = tokio::task::spawn_blocking(move || cmd.output().unwrap())
        .await
        .unwrap();
    drop(data);
    out
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

fn ok(out: &Output) -> String {
    let stdout = text(&out.stdout);
    assert!(
        out.status.success(),
        "status {:?}\nstdout:\n{stdout}\nstderr:\n{}",
        out.status,
        text(&out.stderr)
    );
    stdout
}

#[actix_web::test]
async fn rotate_field_keys_moves_every_value_to_the_current_key_while_the_server_serves() {
    const USERS: usize = 240;
    const NAMED: usize = 12;
    const MERCHANTS: usize = 90;
    let db = TestDatabase::create();
    let (user_ids, merchant_ids) = seed(&db, None, USERS, NAMED, MERCHANTS).await;
    // What each value must decrypt to afterwards.
    let mut want_user: HashMap<String, String> = user_ids
        .iter()
        .enumerate()
        .map(|(i, id)| (id.clone(), user_phone(i)))
        .collect();
    let want_merchant: HashMap<String, String> = merchant_ids
        .iter()
        .enumerate()
        .map(|(i, id)| (id.clone(), contact_phone(i)))
        .collect();

    // The server now runs with v2 current (v1 still readable) and the job runs beside it.
    let app = spawn_on(db, |s| s.field_keys = Some(V2.to_string().into())).await;
    let url = app.db.url.clone();
    let job = actix_web::rt::spawn(async move { rotate(&url, V2, &["--batch-size", "25"]).await });
    // Meanwhile users sign in, read their profile (the server's lazy re-encryption) and
    // change their phone (a write the job must not overwrite); owners list their merchants.
    for (i, seeded) in user_ids.iter().enumerate().take(NAMED) {
        let s = login(&app, &format!("rot{i}")).await;
        assert_eq!(&s.user_id, seeded, "the seeded user signs in");
        let me: Value = get_auth(&app, &s.access_token, "/api/users/me")
            .await
            .json()
            .await
            .unwrap();
        assert_eq!(me["phone"], Phone::parse(&user_phone(i)).unwrap().masked());
        if i % 2 == 0 {
            let new_phone = format!("137{i:08}");
            let res = signed(
                &app,
                &s,
                "PUT",
                "/api/users/me/phone",
                Some(json!({"phone": new_phone})),
            )
            .await;
            assert_eq!(res.status(), 200);
            want_user.insert(s.user_id.clone(), new_phone);
        }
        let res = get_auth(&app, &s.access_token, "/api/merchants/me").await;
        assert_eq!(res.status(), 200);
    }
    let out = job.await.unwrap();
    let stdout = ok(&out);
    let stderr = text(&out.stderr);
    assert!(stdout.contains("done: current key v2"), "{stdout}");
    assert!(
        stderr.contains("table=users column=phone_cipher scanned="),
        "progress lines on stderr: {stderr}"
    );
    assert!(stderr.contains("table=merchants"), "{stderr}");

    // Every value is under v2 and decrypts, with v2 (and v1 no longer needed), to what it
    // should be: the seeded phone, or the one the user set meanwhile.
    let db = app.state.app.db().clone();
    let only_v2 = ring(&app.state.settings, Some(V2));
    let users = stored(&db, EncryptedColumn::UserPhone).await;
    assert_eq!(users.len(), USERS);
    for (id, key, cipher) in &users {
        assert_eq!(key, "v2", "user {id}");
        let plain = only_v2
            .decrypt(key, cipher, &aad(EncryptedColumn::UserPhone, id))
            .unwrap();
        assert_eq!(&plain, &want_user[id], "user {id}");
    }
    let merchants = stored(&db, EncryptedColumn::MerchantContactPhone).await;
    assert_eq!(merchants.len(), MERCHANTS);
    for (id, key, cipher) in &merchants {
        assert_eq!(key, "v2", "merchant {id}");
        let plain = only_v2
            .decrypt(key, cipher, &aad(EncryptedColumn::MerchantContactPhone, id))
            .unwrap();
        assert_eq!(&plain, &want_merchant[id], "merchant {id}");
    }

    // The blind index still finds users by phone (the admin search), old and new phones.
    for id in user_ids.iter().step_by(37).chain(&user_ids[..NAMED]) {
        let search = UserSearch {
            nickname: None,
            phone: Some(Phone::parse(&want_user[id]).unwrap()),
        };
        let found = app
            .state
            .app
            .users
            .search(&search, &PageRequest::new(None, None).unwrap())
            .await
            .unwrap();
        let ids: Vec<&str> = found.items.iter().map(|u| u.id.as_str()).collect();
        assert_eq!(ids, [id.as_str()], "search by {}", want_user[id]);
    }

    // A second run finds nothing to do.
    let again = ok(&rotate(&app.db.url, V2, &[]).await);
    assert!(again.contains("rotated 0 value(s)"), "{again}");
    stop(app).await;
}

async fn stop(app: TestApp) {
    app.handle.stop(true).await;
}

#[actix_web::test]
async fn an_interrupted_rotation_resumes_where_the_data_says() {
    let db = TestDatabase::create();
    seed(&db, None, 70, 0, 30).await;
    let url = db.url.clone();

    // Stopped after 50 rows (two batches of 20 and one cut to 10): 50 moved, 50 left.
    let first = ok(&rotate(&url, V2, &["--batch-size", "20", "--limit", "50"]).await);
    assert!(first.contains("rotated 50 value(s)"), "{first}");
    assert!(first.contains("stopped at the limit"), "{first}");
    let data = tempfile::tempdir().unwrap();
    let settings = test_settings(&db, data.path());
    let store = Db::connect(&settings).await.unwrap();
    assert_eq!(count_under(&store, "v1").await, 50);
    assert_eq!(count_under(&store, "v2").await, 50);

    // Continuing from the last id of the users: only rows after it are looked at.
    let users = stored(&store, EncryptedColumn::UserPhone).await;
    let last_v2 = users
        .iter()
        .rev()
        .find(|(_, k, _)| k == "v2")
        .unwrap()
        .0
        .clone();
    let from = ok(&rotate(
        &url,
        V2,
        &[
            "--table",
            "users",
            "--from-id",
            &last_v2,
            "--batch-size",
            "7",
        ],
    )
    .await);
    assert!(from.contains("rotated 20 value(s)"), "{from}");
    assert_eq!(
        count_under(&store, "v1").await,
        30,
        "the merchants are left"
    );

    // A plain rerun finishes the job; one more finds nothing.
    let rest = ok(&rotate(&url, V2, &[]).await);
    assert!(rest.contains("rotated 30 value(s)"), "{rest}");
    assert!(!rest.contains("stopped at the limit"), "{rest}");
    assert_eq!(count_under(&store, "v1").await, 0);
    assert_eq!(count_under(&store, "v2").await, 100);
    let none = ok(&rotate(&url, V2, &[]).await);
    assert!(none.contains("rotated 0 value(s)"), "{none}");
}

#[actix_web::test]
async fn rotation_refuses_data_under_a_key_the_ring_lacks_and_changes_nothing() {
    let db = TestDatabase::create();
    // Written by a ring with v3 current; the job is given only v2 (and v1).
    seed(&db, Some("v3:third-field-key-0123456789"), 5, 0, 2).await;
    let out = rotate(&db.url, V2, &[]).await;
    assert_eq!(out.status.code(), Some(1), "{}", text(&out.stdout));
    let stderr = text(&out.stderr);
    assert!(
        stderr.contains("5 row(s) of users.phone_cipher under key id \"v3\""),
        "{stderr}"
    );
    assert!(
        stderr.contains("2 row(s) of merchants.contact_phone_cipher under key id \"v3\""),
        "{stderr}"
    );
    assert!(
        stderr.contains("not in the configured key ring"),
        "{stderr}"
    );
    assert!(stderr.contains("APP_FIELD_KEYS"), "{stderr}");
    let data = tempfile::tempdir().unwrap();
    let store = Db::connect(&test_settings(&db, data.path())).await.unwrap();
    assert_eq!(count_under(&store, "v3").await, 7, "nothing was changed");
}

/// The compare-and-set itself, without relying on timing: a value that changed between the
/// job's read and its write is left alone, even when the change kept the key id (an instance
/// still on the old key ring storing a user's new phone).
#[actix_web::test]
async fn a_value_changed_after_the_read_is_never_overwritten() {
    use points_app::storage::field_keys::{self, Rekey};
    use points_app::storage::users::StoredPhone;
    let db = TestDatabase::create();
    let (user_ids, _) = seed(&db, None, 3, 0, 0).await;
    let data = tempfile::tempdir().unwrap();
    let settings = test_settings(&db, data.path());
    let store = Db::connect(&settings).await.unwrap();
    let (old_ring, new_ring) = (ring(&settings, None), ring(&settings, Some(V2)));
    let read = field_keys::not_under_key(&store, EncryptedColumn::UserPhone, "v2", None, 10)
        .await
        .unwrap();
    assert_eq!(read.len(), 3);

    // The middle user's phone changes under v1 after the job read it.
    let id = &user_ids[1];
    let edited = Phone::parse("13700000001").unwrap();
    let (key_id, cipher) = old_ring
        .encrypt(edited.as_str(), &aad(EncryptedColumn::UserPhone, id))
        .unwrap();
    let phone = StoredPhone {
        cipher: cipher.clone(),
        key_id,
        blind_index: old_ring.blind_index(edited.as_str()),
        masked: edited.masked(),
    };
    assert!(
        storage::users::set_phone(&store, id, &phone, None)
            .await
            .unwrap()
    );

    let changes: Vec<Rekey> = read
        .into_iter()
        .map(|old| {
            let column = EncryptedColumn::UserPhone;
            let plain = new_ring
                .decrypt(&old.key_id, &old.cipher, &aad(column, &old.id))
                .unwrap();
            let (key_id, cipher) = new_ring.encrypt(&plain, &aad(column, &old.id)).unwrap();
            Rekey {
                old,
                key_id,
                cipher,
            }
        })
        .collect();
    let stored_now = field_keys::rekey(&store, EncryptedColumn::UserPhone, &changes)
        .await
        .unwrap();
    assert_eq!(stored_now, [true, false, true]);
    let rows = stored(&store, EncryptedColumn::UserPhone).await;
    let (_, key, kept) = rows.iter().find(|(i, _, _)| i == id).unwrap();
    assert_eq!((key.as_str(), kept), ("v1", &cipher), "the edit survives");
    // The next run moves it like any other.
    let summary =
        points_app::app::keys::rotate_field_keys(&store, &new_ring, &Default::default(), |_| {})
            .await
            .unwrap();
    assert_eq!((summary.rotated(), summary.skipped()), (1, 0));
    let rows = stored(&store, EncryptedColumn::UserPhone).await;
    let (_, key, cipher) = rows.iter().find(|(i, _, _)| i == id).unwrap();
    assert_eq!(key, "v2");
    assert_eq!(
        new_ring
            .decrypt(key, cipher, &aad(EncryptedColumn::UserPhone, id))
            .unwrap(),
        "13700000001"
    );
}
