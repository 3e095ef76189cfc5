//! Shared by the fuzz targets: the fixed verifier keys (those of the sov-verify test fixture,
//! which also wrote the seed corpus: `cargo test -p sov-verify --test fuzz_corpus -- --ignored`).

use std::sync::OnceLock;

use sov_audit_core::note::Vkey;

/// The test log's Ed25519 (0x01) key.
pub const ED25519_VKEY: &str =
    "example.com/sovereign-test+cb8598d1+AdBKsjJ0K7SrOhNovUYV5ObQIkq3GgFrr4UgozLJd4c3";

/// The test log's ML-DSA-44 (0x06) key.
pub const MLDSA_VKEY: &str = "example.com/sovereign-test+bc80e89b+BjoiUJSUCyR1KcH7+JcebMX7ME/UWTCy0ZXcSUhFy4q4MrlQMhfmSC8L32MGA9ITv8dmmPCD/FglrBeUo5Vm97SUaM3JiHdVpqkrEgMUXJ6fWb8HsfuHIyKv9ziB9tlgLWi+3GDsppB/8U+f5m4uM/UVPcuO92yCkTw+n1zvT90p04BLyIoz/CJgiWTX36UDQ3l5le6UnbIGHe+jJNJOwstKja3eep+i60GgP+UmSO98yJEcr7RWPb3J70s5RxrJlH6nlAioT2EU3dnngERVVPV2EfqeIBrMN/BoKiOLFa83NmR9DzBiTUOhVWDwLl/Xt1ELHREK+LW6Vq+wUL5Kd38mZNBfU700iUwQdCZuA6mig0tj1RvKXzyUlED1ESRagBsaZuk4Z4hFZEKkYXBIi4AvykSNduIDJzcYpQhQzjyWe+6F2GAODoCbJvY/Fg4uZx0UznomSWWDgkuNlVzmJb4jo7r0IbZhaWGEhPSiNnCDr+lIg/a11aEUgy/CkHpCq1gQWdovNP9XYJhcyLWV/06vAmstugvuHY7AW6Y8O3uUclxcAa28hrnuniai+P2Rnhg6zuRnTxZgmcc9h63P4q/3BCrcpshqCNWaxb/s/+dgBRZ6XO4UcL/7Vwwrbvy/+F94xpZAUvLjOzc0vhija49/RTmeIW9x6gWy1VvZT5KHcLjfvi4HRHDzl6qjq3KTkA2t3G/h+8Qu5TXyrtY1nHHn49rRHJknRzwitH4FW6wZFPsHecNLeRAC+qYSjXYW8eqlUKHaaLCuDDrfxLppUj5R6G3OewM4wxxDStkdJh5z2yWcno1wok+Tq4a8ikOtrdanxTks765106ryuvKCxX9wtRRhznbLonQvPERK7Apnv7RqbzZivGjhnT4dhXTAUsknB++r1+InWd8udnic6yeMlEZthFdT0YMEd1NsM0lZPZQrgJ21ag27Mi5kt7cEPryssHIRTVLa8mUeD5yNYeTXuvB6RwF0ksZnKIUy8nZ8l8T6DMIbejkWBamJCKdNkprft2NRifZmV1BJp2tQzA+jy2LWw+En5NfiI8SXE6KGr0lQDybBGDlBwyZFP16wltAsTBbrnQbM6q19r+VP7/DEzRR0qX86V1UcLKcUKeMNUpBJEJ+HRN3tks94rpH3SRBrZ7jmAHgKIt7ofrtcuo8GEYelRbVXb2y6+OxfFzqIQHhuN9cyFelXsl4r1DpLJVlcN7XG6HfpxTblyIHdaCJDB3rWKntQfCNLmarelgpOiiGIVFrSXxZv30VQwDiP1EAmQSVy1/E/w7isfGy3gPLDZUAy4pTdyN72Lf1t9ZPyiq+fCeWl4VyaH2Hqu/pikUwrPbChyvix2PlX97LhgsKlhjectstKi+uZE60gEVIdlPNY+ib3T6uskkDnFqIZ1HbwpxbxJrqVvbJqKDHANbiv3dtGp21P5+/NtTmFAuXqT3mNMAcvVgXf52PkrvJvN/tkBVmhHD8VKj7b55xcSx4BKXGVSa9JfNaVHipoWQlzXAlzJsSTc+6ERjzYIX5xLbF1k8voKeQbi2pdA+yfIM0VpUn8yjbHBfUQmzMvNwhOyGwg9232ad+64+8MD81SYonmG4CrF1WTUV1guYZOHfE2tC2dlJgVWplZnrHWDJrKnS/AQQe13baAqABg5L1Fo71dSN8u2zLe/o69MgHSctMGyDE6lcVekbw2dO3KdVdvt6P4ZVpCwePg5fF5tXIt87jNU06o4wJTjAXBebqWcHU=";

/// Both keys, parsed once.
pub fn keys() -> &'static [Vkey] {
    static KEYS: OnceLock<Vec<Vkey>> = OnceLock::new();
    KEYS.get_or_init(|| {
        [ED25519_VKEY, MLDSA_VKEY]
            .iter()
            .map(|s| Vkey::parse(s).expect("the fixed fuzz keys parse"))
            .collect()
    })
}
pub mod knowledge;
