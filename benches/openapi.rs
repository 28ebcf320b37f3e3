//! OpenAPI import and argument validation: `cargo bench --bench openapi`.
//!
//! Measures, in one run:
//! - loading a large generated document (400 operations, `$ref` cycles,
//!   `oneOf`, `allOf`, `nullable`, formats) and the public Box document
//!   (296 operations, 1.7 MiB): parse, import and compile every tool's
//!   validator, as a catalog load does; time (median of runs) and peak heap;
//! - validating a typical tool's arguments, per call, with the `jsonschema`
//!   validator the gateway uses and with the hand-written subset it replaced.
//!
//! `PORTCULLIS_BENCH_RUNS` (runs per import measurement, default 5).

#[path = "support/handwritten_schema.rs"]
mod handwritten;
#[path = "../tests/common/openapi_gen.rs"]
mod openapi_gen;

use std::{
    alloc::{GlobalAlloc, Layout, System},
    hint::black_box,
    sync::atomic::{AtomicUsize, Ordering},
    time::{Duration, Instant},
};

use portcullis::gateway::{
    openapi::{self, Filter},
    schema::ArgumentSchema,
};
use serde_json::{Value, json};

/// Counts live heap bytes and their peak, to report an import's memory.
struct Counting;

static LIVE: AtomicUsize = AtomicUsize::new(0);
static PEAK: AtomicUsize = AtomicUsize::new(0);

unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        let p = unsafe { System.alloc(layout) };
        if !p.is_null() {
            let now = LIVE.fetch_add(layout.size(), Ordering::Relaxed) + layout.size();
            PEAK.fetch_max(now, Ordering::Relaxed);
        }
        p
    }
    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        unsafe { System.dealloc(ptr, layout) };
        LIVE.fetch_sub(layout.size(), Ordering::Relaxed);
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

fn load(text: &str) -> Vec<ArgumentSchema> {
    let doc = openapi::parse_document(text).expect("document parses");
    let imported = openapi::import(&doc, &Filter::default()).expect("document imports");
    imported
        .operations
        .iter()
        .map(|op| ArgumentSchema::compile(&op.input_schema).expect("schema compiles"))
        .collect()
}

fn measure_import(label: &str, text: &str, runs: usize) {
    let mut times = Vec::new();
    let mut peak = 0;
    let mut tools = 0;
    for _ in 0..runs {
        let base = LIVE.load(Ordering::Relaxed);
        PEAK.store(base, Ordering::Relaxed);
        let start = Instant::now();
        let validators = black_box(load(text));
        times.push(start.elapsed());
        peak = peak.max(PEAK.load(Ordering::Relaxed) - base);
        tools = validators.len();
    }
    times.sort();
    println!(
        "import {label}: {} bytes, {tools} tools: median {:.1} ms (min {:.1} ms), peak heap {:.1} MiB",
        text.len(),
        ms(times[times.len() / 2]),
        ms(times[0]),
        peak as f64 / (1024.0 * 1024.0)
    );
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

fn per_call(label: &str, mut f: impl FnMut() -> bool) {
    let iterations = 200_000;
    for _ in 0..10_000 {
        black_box(f());
    }
    let start = Instant::now();
    for _ in 0..iterations {
        assert!(black_box(f()));
    }
    let micros = start.elapsed().as_secs_f64() * 1e6 / iterations as f64;
    println!("validate {label}: {micros:.3} µs per call");
}

fn main() {
    let runs: usize = std::env::var("PORTCULLIS_BENCH_RUNS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(5);
    let generated = serde_json::to_string(&openapi_gen::large_document(400)).unwrap();
    measure_import("generated (400 operations)", &generated, runs);
    let box_path = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/fixtures/openapi/box-openapi.json"
    );
    match std::fs::read_to_string(box_path) {
        Ok(text) => measure_import("box-openapi.json", &text, runs),
        Err(e) => println!("import box-openapi.json: skipped ({e})"),
    }

    // A typical tool: what a CRM's create_contact takes.
    let schema = json!({
        "type": "object",
        "properties": {
            "name": { "type": "string", "minLength": 1, "maxLength": 200 },
            "email": { "type": "string" },
            "age": { "type": "integer", "minimum": 0, "maximum": 150 },
            "status": { "enum": ["lead", "customer", "churned"] },
            "tags": { "type": "array", "items": { "type": "string" }, "maxItems": 20 },
            "company": { "type": "string" }
        },
        "required": ["name"],
        "additionalProperties": false
    });
    let args = json!({
        "name": "Ada Lovelace", "email": "ada@example.com", "age": 36,
        "status": "customer", "tags": ["vip", "math"], "company": "Analytical Engines"
    });
    let map = schema.as_object().unwrap().clone();
    let compiled = ArgumentSchema::compile(&map).unwrap();
    per_call("jsonschema (gateway)", || compiled.validate(&args).is_ok());
    per_call("hand-written subset (replaced)", || {
        handwritten::validate(&map, &args).is_ok()
    });
    let invalid: Value = json!({ "name": "", "tags": [1] });
    per_call("jsonschema, invalid arguments (error built)", || {
        compiled.validate(&invalid).is_err()
    });
}
