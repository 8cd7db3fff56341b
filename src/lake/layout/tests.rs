use super::{Dictionary, Layout, RECENT_VALUES, SourceNames, Stage};
use crate::event::{Decoder, Interner, Position, Roles, Schema, Symbols};
use arrow_array::types::UInt32Type;
use arrow_array::{Array, DictionaryArray, Int64Array, StringArray};
use std::sync::Arc;

/// The strings of a column staged as a dictionary.
fn strings(array: &dyn Array) -> Vec<Option<String>> {
    let dictionary = array
        .as_any()
        .downcast_ref::<DictionaryArray<UInt32Type>>()
        .expect("a dictionary");
    let typed = dictionary
        .downcast_dict::<StringArray>()
        .expect("of strings");
    typed.into_iter().map(|s| s.map(str::to_string)).collect()
}

#[test]
fn meta_columns_follow_each_row_across_sources() {
    let schema = Schema::ecommerce();
    let layout = Arc::new(Layout::new(&schema));
    let names = SourceNames::new(&["a.jsonl".into(), "b.jsonl".into()], &["clicks".into()]);
    let roles = Roles::of(&schema);
    let mut interner = Interner::new(Arc::new(Symbols::default()));
    let mut decoder = Decoder::new(schema, 1 << 20);
    let line = br#"{"event_id":"e1","event_type":"click","user_id":"u1","event_timestamp":"2026-11-21T10:00:00Z","country":"DE"}"#;
    let positions = [
        Position::File { file: 0, offset: 0 },
        Position::File {
            file: 0,
            offset: 90,
        },
        Position::File { file: 1, offset: 0 },
        Position::Kafka {
            topic: 0,
            partition: 3,
            offset: 41,
        },
        Position::Kafka {
            topic: 0,
            partition: 3,
            offset: 42,
        },
        Position::Generator { seq: 7 },
        Position::File {
            file: 0,
            offset: 180,
        },
    ];
    let mut stage = Stage::new(layout, names);
    for (i, &position) in positions.iter().enumerate() {
        let record = decoder.decode(line).expect("a valid event");
        let event = roles.project(&record, &mut interner);
        stage.push(&record, &event, 5 + i as u64 / 3, position);
    }
    let (parts, dead) = stage.take().expect("batches");
    assert!(dead.is_none());
    assert_eq!(parts.len(), 1, "one day and event type");
    let batch = &parts[0].1;
    let column = |name: &str| batch.column_by_name(name).expect("column").clone();
    let sources = strings(column("_source").as_ref());
    let offsets = column("_offset");
    let offsets = offsets.as_any().downcast_ref::<Int64Array>().expect("ints");
    let epochs = column("_epoch");
    let epochs = epochs.as_any().downcast_ref::<Int64Array>().expect("ints");
    let sources: Vec<&str> = sources
        .iter()
        .map(|s| s.as_deref().expect("not null"))
        .collect();
    assert_eq!(
        sources,
        [
            "file:a.jsonl",
            "file:a.jsonl",
            "file:b.jsonl",
            "kafka:clicks/3",
            "kafka:clicks/3",
            "generator",
            "file:a.jsonl"
        ]
    );
    // The interned fields, staged by symbol: the strings as read, absent ones null.
    assert_eq!(
        strings(column("country").as_ref()),
        vec![Some("DE".to_string()); 7]
    );
    assert_eq!(strings(column("product").as_ref()), vec![None; 7]);
    assert_eq!(offsets.values().to_vec(), [0, 90, 0, 41, 42, 7, 180]);
    assert_eq!(epochs.values().to_vec(), [5, 5, 5, 6, 6, 6, 7]);
    assert_eq!(epochs.null_count() + offsets.null_count(), 0);
}

#[test]
fn a_dictionary_tells_apart_values_that_share_a_cache_slot() {
    let slot = RECENT_VALUES as u64;
    // Three values in one cache slot, each evicting the one before, then one elsewhere.
    let ids = [1, 1 + slot, 1, 1 + 2 * slot, 1 + slot, 2, 1];
    let name = |id: u64| format!("v{id}");
    let mut dictionary = Dictionary::with_capacity(ids.len());
    let mut firsts = Vec::new();
    for (i, &id) in ids.iter().enumerate() {
        if i == 3 {
            dictionary.push_null();
        }
        let value = name(id);
        let mut asked = false;
        dictionary.push(id, || {
            asked = true;
            firsts.push(id);
            value.as_str()
        });
        assert_eq!(asked, !ids[..i].contains(&id), "value {id} at row {i}");
    }
    let array = dictionary.finish().expect("a dictionary");
    let mut expected: Vec<Option<String>> = ids.iter().map(|&id| Some(name(id))).collect();
    expected.insert(3, None);
    assert_eq!(strings(array.as_ref()), expected);
    // Each value's string was copied once, in order of first appearance.
    assert_eq!(firsts, [1, 1 + slot, 1 + 2 * slot, 2]);
    // Finishing empties the cache with the table: the next epoch copies values again.
    let mut again = false;
    dictionary.push(1, || {
        again = true;
        "v1"
    });
    assert!(again);
    let array = dictionary.finish().expect("a dictionary");
    assert_eq!(strings(array.as_ref()), [Some("v1".to_string())]);
}
