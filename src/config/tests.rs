use super::*;
use crate::lake::writer::Codec;

#[test]
fn the_default_config_file_parses_to_the_defaults() {
    let file = ConfigFile::parse(DEFAULT_CONFIG, "default").unwrap();
    let config = resolve(file, Overrides::default()).unwrap();
    let defaults = resolve(ConfigFile::default(), Overrides::default()).unwrap();
    assert_eq!(config.schema, defaults.schema);
    assert_eq!(config.sql_views, defaults.sql_views);
    assert_eq!(config.sql_views, crate::views::builtin::ecommerce());
    assert_eq!(config.workers, defaults.workers);
    assert_eq!(config.epoch, defaults.epoch);
    assert_eq!(config.max_record_bytes, defaults.max_record_bytes);
    let codec = |c: &PipelineConfig| c.lake.as_ref().map(|l| l.files.codec);
    assert_eq!(codec(&config), Some(Codec::Snappy));
    assert_eq!(codec(&config), codec(&defaults));
}

#[test]
fn zstd_takes_a_level_or_three() {
    let lake = |text: &str| {
        let file = ConfigFile::parse(text, "t").unwrap();
        resolve(file, Overrides::default())
            .unwrap()
            .lake
            .unwrap()
            .files
            .codec
    };
    assert_eq!(lake("[lake]\ncompression = \"zstd\"\n"), Codec::Zstd(3));
    assert_eq!(
        lake("[lake]\ncompression = \"zstd\"\nzstd_level = 9\n"),
        Codec::Zstd(9)
    );
}

#[test]
fn flags_win_over_the_file() {
    let file = ConfigFile::parse("[pipeline]\nworkers = 3\nepoch = \"1s\"\n", "t").unwrap();
    let flags = Overrides {
        workers: Some(2),
        epoch_records: Some(10),
        ..Overrides::default()
    };
    let config = resolve(file, flags).unwrap();
    assert_eq!(config.workers, 2);
    assert_eq!(config.epoch, EpochPolicy::Records(10));
}

#[test]
fn kafka_options_come_from_the_file_the_url_and_flags_in_that_order() {
    let file = ConfigFile::parse(
        "[pipeline]\nsource = \"kafka://h:1/events?group=url\"\n\
         [kafka]\nstart = \"latest\"\ngroup = \"file\"\n\
         [kafka.properties]\n\"security.protocol\" = \"SASL_SSL\"\n\"sasl.username\" = \"me\"\n",
        "t",
    )
    .unwrap();
    let flags = Overrides {
        kafka: vec![("sasl.username".into(), "flag".into())],
        until_exhausted: true,
        ..Overrides::default()
    };
    let config = resolve(file, flags).unwrap();
    let SourceSpec::Kafka(spec) = config.source else {
        panic!("{:?}", config.source)
    };
    assert_eq!(spec.start, crate::source::kafka::StartAt::Latest);
    assert_eq!(spec.group_or("id"), "url");
    assert!(spec.until_end);
    assert_eq!(
        spec.properties,
        [
            ("security.protocol".to_owned(), "SASL_SSL".to_owned()),
            ("sasl.username".to_owned(), "flag".to_owned()),
        ]
    );
    let flags = Overrides {
        kafka: vec![("linger.ms".into(), "1".into())],
        ..Overrides::default()
    };
    let err = resolve(ConfigFile::default(), flags)
        .unwrap_err()
        .to_string();
    assert!(err.contains("the source is not kafka://"), "{err}");
}

#[test]
fn bad_values_get_one_line_errors() {
    let cases = [
        (
            "[pipeline]\nworkers = 0\n",
            "workers must be between 1 and 256",
        ),
        (
            "[pipeline]\nepoch = \"soon\"\n",
            "epoch `soon` is not a duration",
        ),
        ("[pipeline]\nviews = [\"nope\"]\n", "unknown view `nope`"),
        ("[pipeline]\nsource = \"kafka\"\n", "source `kafka` is not"),
        (
            "[generator]\nbad_fraction = 2.0\n",
            "bad fraction must be between 0 and 1",
        ),
        // A schema without [[views]] runs the built-in views, which must fit it.
        (
            "[[schema.fields]]\nname = \"event_type\"\ntype = \"string\"\n",
            "view `events_per_minute`: unknown column `event_timestamp` (line 1, column 29); it is a built-in view",
        ),
        (
            "[pipeline]\nviews = [\"revenue_by_country\"]\n[[schema.fields]]\nname = \"event_type\"\ntype = \"int\"\nrequired = true\n",
            "view `revenue_by_country`: a string value cannot be compared with an int value (line 2, column 16); it is a built-in view",
        ),
        (
            "[lake]\ncompression = \"gzip\"\n",
            "lake compression must be \"snappy\" or \"zstd\", not \"gzip\"",
        ),
        (
            "[lake]\nzstd_level = 3\n",
            "lake zstd_level needs compression = \"zstd\"",
        ),
        (
            "[lake]\ncompression = \"zstd\"\nzstd_level = 23\n",
            "lake zstd_level must be between 1 and 22",
        ),
    ];
    for (text, expected) in cases {
        let err = ConfigFile::parse(text, "t")
            .and_then(|f| resolve(f, Overrides::default()))
            .unwrap_err()
            .to_string();
        assert!(err.contains(expected), "{text:?}: {err}");
        assert!(!err.contains('\n'), "{err}");
    }
    let err = ConfigFile::parse("[pipeline]\nwrokers = 2\n", "t")
        .unwrap_err()
        .to_string();
    assert!(err.contains("unknown field `wrokers`"), "{err}");
}

#[test]
fn a_config_runs_its_own_views_or_the_built_in_ones_and_a_list_picks_among_both() {
    let names = |text: &str| -> Vec<String> {
        let file = ConfigFile::parse(text, "t").unwrap();
        let config = resolve(file, Overrides::default()).unwrap();
        config.sql_views.into_iter().map(|v| v.name).collect()
    };
    let builtin: Vec<String> = crate::views::builtin::definitions()
        .into_iter()
        .map(|v| v.name)
        .collect();
    assert_eq!(names(""), builtin);
    let own = "[[views]]\nname = \"mine\"\nsql = \"SELECT country, count(*) AS n FROM events GROUP BY country\"\n";
    assert_eq!(names(own), ["mine"]);
    // A list picks by name, the config's views first, then the built-in ones in their order.
    let listed =
        format!("[pipeline]\nviews = [\"top_products\", \"mine\", \"events_by_type\"]\n{own}");
    assert_eq!(names(&listed), ["mine", "events_by_type", "top_products"]);
    // A config's view with a built-in's name replaces it.
    let replaced = "[pipeline]\nviews = [\"events_by_type\"]\n[[views]]\nname = \"events_by_type\"\nsql = \"SELECT source, count(*) AS n FROM events GROUP BY source\"\n";
    let file = ConfigFile::parse(replaced, "t").unwrap();
    let config = resolve(file, Overrides::default()).unwrap();
    assert_eq!(config.sql_views.len(), 1);
    assert!(config.sql_views[0].sql.contains("GROUP BY source"));
}
