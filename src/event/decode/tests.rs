use super::*;
use crate::event::Field;

fn decoder() -> Decoder {
    Decoder::new(Schema::ecommerce(), 1024)
}

/// Orders with a nested customer, activity with a customer too, stock moves without one.
fn nested() -> Decoder {
    let mut customer = Field::new("customer_id", FieldType::String, false);
    customer.path = Some("customer.id".into());
    customer.required_for = vec!["order".into()];
    let mut city = Field::new("city", FieldType::String, false);
    city.path = Some("shipping.address.city".into());
    let mut amount = Field::new("amount", FieldType::Money, false);
    amount.required_for = vec!["order".into()];
    let schema = Schema {
        fields: vec![
            Field::new("kind", FieldType::String, true),
            customer,
            city,
            amount,
        ],
        event_time: None,
        kind: Some("kind".into()),
        partition_by: None,
    }
    .validated()
    .expect("a valid schema");
    Decoder::new(schema, 1024)
}

#[test]
fn nested_fields_are_found_by_their_path_and_the_object_stays_in_doc() {
    let mut d = nested();
    let raw = r#"{"kind":"order","customer":{"id":"c\u0031","tier":"gold"},"shipping":{"address":{"city":"Oslo","zip":"0150"}},"amount":"12.50","items":[1]}"#;
    let r = d.decode(raw.as_bytes()).expect("valid");
    assert_eq!(r.text(1), Some("c1"));
    assert_eq!(r.text(2), Some("Oslo"));
    assert_eq!(r.money(3), Some(1250));
    let doc: serde_json::Value = serde_json::from_str(r.doc()).expect("JSON");
    assert_eq!(doc["customer"]["tier"], "gold");
    assert_eq!(doc["shipping"]["address"]["zip"], "0150");
    assert_eq!(doc["items"], serde_json::json!([1]));
    // Not an object on the way, or a missing key: absent.
    let r = d
        .decode(br#"{"kind":"stock","customer":"none","shipping":{"address":null}}"#)
        .expect("valid: nothing is required for stock");
    assert_eq!((r.text(1), r.text(2)), (None, None));
}

#[test]
fn a_field_required_for_a_kind_is_required_for_that_kind_only() {
    let mut d = nested();
    let e = d
        .decode(br#"{"kind":"order","amount":5}"#)
        .expect_err("an order needs a customer");
    assert_eq!(e.reason, Reason::MissingField);
    assert_eq!(
        e.message,
        "field `customer_id` is required for `order` events and is missing or null"
    );
    assert!(d.decode(br#"{"kind":"activity"}"#).is_ok());
    let e = d
        .decode(br#"{"kind":"order","customer":{"id":7},"amount":5}"#)
        .expect_err("a number is not a string");
    assert_eq!(e.reason, Reason::WrongType);
}

const GOOD: &str = r#"{"event_id":"e1","event_type":"purchase","user_id":"u1","event_timestamp":"2024-01-01T10:00:00Z","product":"laptop","price":999.99,"country":"UK"}"#;

fn reason_of(raw: &[u8]) -> (Reason, String) {
    let mut d = decoder();
    let e = d.decode(raw).expect_err("expected a dead letter");
    (e.reason, e.message)
}

#[test]
fn a_valid_record_decodes_with_borrowed_strings() {
    let mut d = decoder();
    let r = d.decode(GOOD.as_bytes()).unwrap();
    assert_eq!(r.text(1), Some("purchase"));
    assert_eq!(r.money(5), Some(99_999));
    assert_eq!(r.timestamp(3), Some(1_704_103_200_000_000));
    assert!(matches!(r.value(0), Value::Text(Text::Span(..))));
    assert_eq!(r.value(7), &Value::Absent);
    assert_eq!(r.doc(), "");
}

#[test]
fn keys_match_their_fields_in_any_order() {
    // Schema order, reversed, and with unknown keys as long as the field expected next.
    let mut d = decoder();
    let reversed = r#"{"country":"UK","price":"5.00","product":"pen","event_timestamp":"2024-01-01T10:00:00Z","user_id":"u1","event_type":"purchase","event_id":"e1"}"#;
    let r = d.decode(reversed.as_bytes()).unwrap();
    assert_eq!(
        (r.text(0), r.text(1), r.text(2), r.text(4), r.text(6)),
        (
            Some("e1"),
            Some("purchase"),
            Some("u1"),
            Some("pen"),
            Some("UK")
        )
    );
    assert_eq!(r.money(5), Some(500));
    let unknown = r#"{"event_id":"e1","event_typx":"a","event_type":"b","user_ix":"x","user_id":"u1","event_timestamp":"2024-01-01T10:00:00Z","country":"UK"}"#;
    let r = d.decode(unknown.as_bytes()).unwrap();
    assert_eq!((r.text(1), r.text(2)), (Some("b"), Some("u1")));
    assert_eq!(r.doc(), r#"{"event_typx":"a","user_ix":"x"}"#);
}

#[test]
fn every_reason_code() {
    assert_eq!(reason_of(b"{not json").0, Reason::NotJson);
    assert_eq!(reason_of(b"{\"event_id\": \"\xff\"}").0, Reason::NotUtf8);
    assert_eq!(
        reason_of(GOOD.replace(r#""user_id":"u1","#, "").as_bytes()).0,
        Reason::MissingField
    );
    assert_eq!(
        reason_of(GOOD.replace(r#""u1""#, "17").as_bytes()).0,
        Reason::WrongType
    );
    assert_eq!(
        reason_of(
            GOOD.replace("2024-01-01T10:00:00Z", "01/01/2024")
                .as_bytes()
        )
        .0,
        Reason::BadTimestamp
    );
    let big = format!(r#"{{"pad":"{}"}}"#, "x".repeat(2000));
    assert_eq!(reason_of(big.as_bytes()).0, Reason::TooLarge);
    assert_eq!(reason_of(b"[1,2,3]").0, Reason::WrongType);
    assert_eq!(
        reason_of(format!("{GOOD} trailing").as_bytes()).0,
        Reason::NotJson
    );
    assert_eq!(reason_of(b"").0, Reason::NotJson);
}

#[test]
fn messages_name_the_field() {
    let (_, m) = reason_of(GOOD.replace(r#""user_id":"u1","#, "").as_bytes());
    assert!(m.contains("`user_id`"), "{m}");
    let (_, m) = reason_of(GOOD.replace("999.99", "\"lots\"").as_bytes());
    assert!(m.contains("`price`"), "{m}");
    let (_, m) = reason_of(GOOD.replace(r#""u1""#, "[1]").as_bytes());
    assert!(
        m.contains("`user_id`") && m.contains("found an array"),
        "{m}"
    );
    let (_, m) = reason_of(
        GOOD.replace(r#""country":"UK""#, r#""country":null"#)
            .as_bytes(),
    );
    assert!(m.contains("`country`"), "{m}");
}

#[test]
fn unicode_and_escapes() {
    let mut d = decoder();
    let raw = GOOD
        .replace("laptop", r#"caf\u00e9 cr\u00e8me \"deluxe\""#)
        .replace("\"UK\"", "\"日本\"");
    let r = d.decode(raw.as_bytes()).unwrap();
    assert_eq!(r.text(4), Some("café crème \"deluxe\""));
    assert_eq!(r.text(6), Some("日本"));
}

#[test]
fn money_from_numbers_and_strings() {
    let mut d = decoder();
    for (price, cents) in [
        ("0", 0),
        ("0.5", 50),
        ("19.99", 1999),
        ("1e2", 10_000),
        ("-3.5", -350),
        ("\"19.99\"", 1999),
    ] {
        let raw = GOOD.replace("999.99", price);
        assert_eq!(
            d.decode(raw.as_bytes()).unwrap().money(5),
            Some(cents),
            "{price}"
        );
    }
    assert_eq!(
        reason_of(GOOD.replace("999.99", "19.999").as_bytes()).0,
        Reason::WrongType
    );
    assert_eq!(
        reason_of(GOOD.replace("999.99", "true").as_bytes()).0,
        Reason::WrongType
    );
    // price is optional: null is absent
    assert_eq!(
        d.decode(GOOD.replace("999.99", "null").as_bytes())
            .unwrap()
            .money(5),
        None
    );
}

#[test]
fn unknown_fields_are_kept_verbatim_in_doc() {
    let mut d = decoder();
    let raw = GOOD.replace(
        r#""country":"UK""#,
        r#""country":"UK","ua":{"os":"linux", "v":[1,2]},"qu\"ote":1.50"#,
    );
    let r = d.decode(raw.as_bytes()).unwrap();
    assert_eq!(
        r.doc(),
        r#"{"ua":{"os":"linux", "v":[1,2]},"qu\"ote":1.50}"#
    );
    let parsed: serde_json::Value = serde_json::from_str(r.doc()).unwrap();
    assert_eq!(parsed["ua"]["v"][1], 2);
}

#[test]
fn timestamps_with_offsets() {
    let mut d = decoder();
    let raw = GOOD.replace("2024-01-01T10:00:00Z", "2024-01-01T12:00:00+02:00");
    assert_eq!(
        d.decode(raw.as_bytes()).unwrap().timestamp(3),
        Some(1_704_103_200_000_000)
    );
}
