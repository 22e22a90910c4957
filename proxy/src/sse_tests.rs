//! Tests of the event-stream grammar: splitting at boundaries however a stream is chunked,
//! and reading events' fields as the specification (and the OpenAI SDKs) read them.

use super::*;
use proptest::prelude::*;

/// A client-side SSE parser as the specification (and the OpenAI SDKs) read streams: the
/// `data` of each dispatched event.
pub fn parse(stream: &[u8]) -> Vec<String> {
    let text = String::from_utf8_lossy(stream)
        .replace("\r\n", "\n")
        .replace('\r', "\n");
    let mut events = Vec::new();
    let mut data: Option<String> = None;
    let mut lines: Vec<&str> = text.split('\n').collect();
    // The last piece has no terminator: an incomplete line, never dispatched.
    lines.pop();
    for line in lines {
        if line.is_empty() {
            if let Some(d) = data.take() {
                events.push(d);
            }
        } else if let Some(v) = line.strip_prefix("data:") {
            let v = v.strip_prefix(' ').unwrap_or(v);
            data = Some(match data.take() {
                Some(d) => format!("{d}\n{v}"),
                None => v.to_owned(),
            });
        }
    }
    events
}

/// Feeds `stream` cut at `points` (sorted) through a splitter, then its events' data.
fn split(stream: &[u8], points: &[usize]) -> (Vec<u8>, Splitter, Vec<String>) {
    let mut s = Splitter::default();
    let mut out = Vec::new();
    let mut datas = Vec::new();
    let mut at = 0;
    for &p in points {
        if let Some(b) = s.push(Bytes::copy_from_slice(&stream[at..p])) {
            for e in events(&b) {
                if let Some(d) = e.data() {
                    datas.push(String::from_utf8_lossy(&d).into_owned());
                }
            }
            out.extend_from_slice(&b);
        }
        at = p;
    }
    (out, s, datas)
}

#[test]
fn holds_incomplete_events_until_they_end() {
    let mut f = Splitter::default();
    assert_eq!(f.push(Bytes::from_static(b"data: {\"a\"")), None);
    assert_eq!(
        f.push(Bytes::from_static(b":1}\n\ndata: {\"b\""))
            .as_deref(),
        Some(&b"data: {\"a\":1}\n\n"[..])
    );
    f.clear();
    let end = error_event("cut", "upstream_stream_error");
    let events = parse(&[&b"data: {\"a\":1}\n\n"[..], &end].concat());
    assert_eq!(events.len(), 2);
    assert!(events[1].starts_with("{\"error\":"));
}

#[test]
fn a_crlf_split_after_its_cr_is_one_line_end() {
    let mut f = Splitter::default();
    assert_eq!(f.push(Bytes::from_static(b"data: a\r\ndata: b\r")), None);
    assert_eq!(
        f.push(Bytes::from_static(b"\n\r\n")).as_deref(),
        Some(&b"data: a\r\ndata: b\r\n\r\n"[..])
    );
    let run = b"data: a\r\ndata: b\r\n\r\n";
    let all: Vec<_> = events(run).collect();
    assert_eq!(all.len(), 1);
    assert_eq!(all[0].data().as_deref(), Some(&b"a\nb"[..]));
}

#[test]
fn reads_fields_as_the_specification_says() {
    let e = Event::new(b": comment\nevent: delta\ndata:x\ndata:  y\nid\n\n");
    assert_eq!(e.data().as_deref(), Some(&b"x\n y"[..]));
    let names: Vec<_> = e.fields().map(|f| f.name).collect();
    assert_eq!(names, [&b"event"[..], b"data", b"data", b"id"]);
    assert!(e.single_data().is_none());
    let one = Event::new(b"data: {\"a\":1}\r\n\r\n");
    let f = one.single_data().unwrap();
    assert_eq!(f.value, b"{\"a\":1}");
    assert_eq!(&one.raw()[f.span.0..f.span.1], b"{\"a\":1}");
    assert_eq!(events(b"\n").next().unwrap().data(), None);
}

fn eol() -> impl Strategy<Value = &'static str> {
    prop_oneof![Just("\n"), Just("\r\n"), Just("\r")]
}

proptest! {
    /// However a stream of events is split into chunks and wherever it is cut, the client
    /// receives exactly the events that arrived whole, then one error event whose data is
    /// OpenAI's error JSON; and the events a hook sees are those the client parses.
    #[test]
    fn a_cut_stream_ends_with_one_well_formed_error_event(
        events_in in proptest::collection::vec("[a-z0-9 {}\":,]{1,30}", 1..8),
        eol in eol(),
        cuts in proptest::collection::vec(0usize..400, 0..6),
        stop in 0usize..400,
    ) {
        let mut stream = Vec::new();
        let mut ends = Vec::new();
        for e in &events_in {
            stream.extend_from_slice(format!("data: {e}{eol}{eol}").as_bytes());
            ends.push(stream.len());
        }
        let stop = stop.min(stream.len());
        let mut points: Vec<usize> = cuts.into_iter().map(|c| c.min(stop)).collect();
        points.push(stop);
        points.sort_unstable();
        let (mut out, mut splitter, seen) = split(&stream, &points);
        // With `\r\n`, an event is whole once the `\r` of its blank line is in: a lone
        // `\r` ends a line too.
        let slack = usize::from(eol == "\r\n");
        let whole = ends.iter().filter(|&&e| e - slack <= stop).count();
        splitter.clear();
        out.extend_from_slice(&error_event("cut", "upstream_stream_error"));
        let got = parse(&out);
        prop_assert_eq!(got.len(), whole + 1, "{:?}", String::from_utf8_lossy(&out));
        for (g, e) in got[..whole].iter().zip(&events_in) {
            prop_assert_eq!(g, e);
        }
        prop_assert_eq!(&seen[..], &got[..whole]);
        let last: serde_json::Value = serde_json::from_str(got.last().unwrap()).unwrap();
        prop_assert_eq!(&last["error"]["code"], "upstream_stream_error");
    }

    /// A stream that ends normally is passed on byte for byte, however it is chunked, and
    /// its events are those a client parses.
    #[test]
    fn an_uncut_stream_is_passed_on_unchanged(
        body in proptest::collection::vec(prop_oneof![
            Just(b'\n'), Just(b'\r'), Just(b':'), Just(b' '), Just(b'd'), Just(b'a'), Just(b't'), any::<u8>()
        ], 0..300),
        cuts in proptest::collection::vec(0usize..300, 0..6),
    ) {
        let mut points: Vec<usize> = cuts.into_iter().map(|c| c.min(body.len())).collect();
        points.push(body.len());
        points.sort_unstable();
        let (mut out, mut splitter, seen) = split(&body, &points);
        if let Some(b) = splitter.finish() {
            out.extend_from_slice(&b);
        }
        prop_assert_eq!(&out, &body);
        let text = String::from_utf8_lossy(&body).into_owned();
        // Whole events only: what the client dispatches before the last blank line.
        let dispatched = parse(&body[..complete_len(&body)]);
        let lossless = !text.contains('\u{fffd}');
        if lossless {
            prop_assert_eq!(seen, dispatched);
        }
    }
}
