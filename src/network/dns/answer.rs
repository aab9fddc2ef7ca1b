//! What the responder says to one query, pure: from the records of the network the query
//! arrived on and the query's bytes, either the response's bytes or "forward it".
//!
//! A name is visible only on the networks that carry it: the server picks the [`Zone`] of
//! the asking container (the names of every network it is on) or, for a client it does
//! not know, of the listener's network, so a name known only on another network is
//! forwarded like any unknown name (Docker does the same; upstream then answers NXDOMAIN). This
//! module does no I/O and must never panic on what a client sends: every packet is
//! untrusted input (the proptests feed it arbitrary bytes).

use std::collections::HashMap;
use std::net::{IpAddr, SocketAddr};

use hickory_proto::op::{Edns, Message, MessageType, OpCode, Query, ResponseCode};
use hickory_proto::rr::rdata::{A, AAAA, PTR};
use hickory_proto::rr::{DNSClass, Name, RData, Record, RecordType};

use super::records::{NetworkRecords, normalize};

/// The TTL of our answers, in seconds. Docker uses 600, but containers come and go (a
/// `scale` or a recreate changes a service's addresses), and a resolver that caches a
/// replica's address for ten minutes keeps sending to a container that is gone. Five
/// seconds keeps caches useful against bursts and stale answers short; the answers cost
/// microseconds, so the extra queries are cheap.
pub const TTL: u32 = 5;

/// The largest UDP response we send when the client advertises a larger EDNS buffer: the
/// DNS flag day 2020 value, safe from fragmentation on any path (ours are local anyway).
const EDNS_PAYLOAD: u16 = 1232;

/// The names one listener answers for.
#[derive(Debug, Clone, Default)]
pub struct Zone {
    /// Normalized name → addresses, in record order, without duplicates.
    names: HashMap<String, Vec<IpAddr>>,
    /// Normalized reverse name (`2.0.0.10.in-addr.arpa`) → the container's name.
    reverse: HashMap<String, Name>,
    /// A container's address → its own `dns:` servers, when it has any.
    upstreams: HashMap<IpAddr, Vec<SocketAddr>>,
}

impl Zone {
    /// The zone of a listener that serves `networks` (normally one network; several only
    /// if they share a gateway address, which the network layer does not do).
    pub fn new<'a>(networks: impl IntoIterator<Item = &'a NetworkRecords>) -> Zone {
        let mut zone = Zone::default();
        for entry in networks.into_iter().flat_map(|n| &n.entries) {
            for name in entry.names() {
                let known = zone.names.entry(normalize(name)).or_default();
                for addr in &entry.addresses {
                    if !known.contains(addr) {
                        known.push(*addr);
                    }
                }
            }
            // A container name that is not a valid DNS name still resolves forwards
            // (compared as text), it just has no PTR record.
            let target = Name::from_ascii(format!("{}.", entry.name));
            for addr in &entry.addresses {
                if let Ok(target) = &target {
                    zone.reverse
                        .entry(normalize(&Name::from(*addr).to_ascii()))
                        .or_insert_with(|| target.clone());
                }
                if !entry.upstreams.is_empty() {
                    zone.upstreams.insert(*addr, entry.upstreams.clone());
                }
            }
        }
        zone
    }

    /// Where to forward the queries of the container at `client`: its `dns:` servers, or
    /// `None` for the host's resolvers.
    pub fn upstreams(&self, client: IpAddr) -> Option<&[SocketAddr]> {
        self.upstreams.get(&client).map(Vec::as_slice)
    }

    /// The addresses of `name` (any case, with or without the trailing dot).
    pub fn lookup(&self, name: &str) -> Option<&[IpAddr]> {
        self.names.get(&normalize(name)).map(Vec::as_slice)
    }
}

/// How the query arrived, which bounds the response's size.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Transport {
    Udp,
    Tcp,
}

/// What to do with one query.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Reply {
    /// Send these bytes back.
    Answer(Vec<u8>),
    /// Not ours: relay the query to the upstream resolvers.
    Forward,
    /// Say nothing: not a query (a response, or too short to carry an id to answer with).
    Ignore,
}

/// Answers `query` from `zone`, or decides it must be forwarded.
pub fn answer(zone: &Zone, query: &[u8], transport: Transport) -> Reply {
    let Ok(request) = Message::from_vec(query) else {
        return reply(header_only(query, ResponseCode::FormErr));
    };
    if request.metadata.message_type != MessageType::Query {
        return Reply::Ignore;
    }
    if request.metadata.op_code != OpCode::Query {
        return reply(header_only(query, ResponseCode::NotImp));
    }
    // Every resolver in use sends exactly one question; RFC 9619 makes it the rule.
    let [question] = request.queries.as_slice() else {
        return reply(header_only(query, ResponseCode::FormErr));
    };
    if question.query_class() != DNSClass::IN {
        return Reply::Forward;
    }
    let key = question.name().to_ascii();
    let records: Vec<RData> = match question.query_type() {
        RecordType::PTR => match zone.reverse.get(&normalize(&key)) {
            Some(target) => vec![RData::PTR(PTR(target.clone()))],
            None => return Reply::Forward,
        },
        wanted => match zone.lookup(&key) {
            // A name we know, asked for a type it has none of (an MX, or AAAA of a
            // container without IPv6): NOERROR with no answer, never NXDOMAIN, which
            // would tell the resolver the name does not exist at all.
            Some(addrs) => addrs
                .iter()
                .filter_map(|addr| match (addr, wanted) {
                    (IpAddr::V4(v4), RecordType::A | RecordType::ANY) => Some(RData::A(A(*v4))),
                    (IpAddr::V6(v6), RecordType::AAAA | RecordType::ANY) => {
                        Some(RData::AAAA(AAAA(*v6)))
                    }
                    _ => None,
                })
                .collect(),
            None => return Reply::Forward,
        },
    };
    let mut response = response_to(&request, question, ResponseCode::NoError);
    response.metadata.authoritative = true;
    for rdata in records {
        response.add_answer(Record::from_rdata(question.name().clone(), TTL, rdata));
    }
    let limit = match transport {
        Transport::Tcp => usize::from(u16::MAX),
        Transport::Udp => request
            .edns
            .as_ref()
            .map_or(512, |e| e.max_payload().clamp(512, EDNS_PAYLOAD))
            .into(),
    };
    match response.to_vec() {
        Ok(bytes) if bytes.len() <= limit => Reply::Answer(bytes),
        // Too many replicas for the client's buffer: set TC, and the client retries over
        // TCP (RFC 1035 §4.2.1, RFC 7766).
        Ok(_) => {
            response.answers.clear();
            response.metadata.truncation = true;
            reply(response.to_vec().ok())
        }
        Err(_) => reply(header_only(query, ResponseCode::ServFail)),
    }
}

/// The SERVFAIL response to `query` (no upstream answered), with its question when it has
/// one; `None` when `query` cannot be answered at all.
pub fn servfail(query: &[u8]) -> Option<Vec<u8>> {
    match Message::from_vec(query) {
        Ok(request) if request.metadata.message_type == MessageType::Query => {
            match request.queries.as_slice() {
                [question] => response_to(&request, question, ResponseCode::ServFail)
                    .to_vec()
                    .ok(),
                _ => header_only(query, ResponseCode::ServFail),
            }
        }
        Ok(_) => None,
        Err(_) => header_only(query, ResponseCode::ServFail),
    }
}

/// The id of a DNS message (relayed answers must carry the client's).
pub fn message_id(packet: &[u8]) -> Option<u16> {
    match packet {
        [hi, lo, ..] => Some(u16::from_be_bytes([*hi, *lo])),
        _ => None,
    }
}

fn reply(bytes: Option<Vec<u8>>) -> Reply {
    bytes.map_or(Reply::Ignore, Reply::Answer)
}

/// An empty response carrying the request's question and flags.
fn response_to(request: &Message, question: &Query, code: ResponseCode) -> Message {
    let mut response = Message::response(request.metadata.id, OpCode::Query);
    response.metadata.recursion_desired = request.metadata.recursion_desired;
    response.metadata.recursion_available = true;
    response.metadata.checking_disabled = request.metadata.checking_disabled;
    response.metadata.response_code = code;
    response.add_query(question.clone());
    // RFC 6891 §6.1.1: a query with an OPT record gets one back.
    if request.edns.is_some() {
        let mut edns = Edns::new();
        edns.set_max_payload(EDNS_PAYLOAD);
        response.set_edns(edns);
    }
    response
}

/// A bare response header (no sections) to a packet we could not or would not parse,
/// built from its raw header: `None` when it is too short to have one, or is itself a
/// response (answering responses could loop between two servers).
fn header_only(query: &[u8], code: ResponseCode) -> Option<Vec<u8>> {
    let &[id_hi, id_lo, flags, ..] = query.get(..12)? else {
        return None;
    };
    if flags & 0x80 != 0 {
        return None;
    }
    // Keep the opcode (0x78) and RD (0x01); set QR. Then RA and the response code.
    let rcode = (u16::from(code) & 0x0f) as u8;
    let mut out = vec![0; 12];
    out[..4].copy_from_slice(&[id_hi, id_lo, 0x80 | (flags & 0x79), 0x80 | rcode]);
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::network::dns::records::Entry;
    use proptest::prelude::*;

    fn entry(name: &str, aliases: &[&str], addrs: &[&str]) -> Entry {
        Entry {
            name: name.into(),
            aliases: aliases.iter().map(|a| a.to_string()).collect(),
            addresses: addrs.iter().map(|a| a.parse().unwrap()).collect(),
            upstreams: vec![],
        }
    }

    fn network(id: &str, entries: Vec<Entry>) -> NetworkRecords {
        NetworkRecords {
            id: id.into(),
            listen: vec![],
            entries,
        }
    }

    /// Project `p`: `web` with two replicas (one dual-stack) and `db` on `front`/`back`.
    fn front() -> Zone {
        Zone::new([&network(
            "p_front",
            vec![
                entry("p-web-1", &["web", "www"], &["10.0.0.2", "fd00::2"]),
                entry("p-web-2", &["web", "www"], &["10.0.0.3"]),
            ],
        )])
    }

    fn query_with(name: &str, rtype: RecordType, edns: bool) -> Vec<u8> {
        let mut m = Message::query();
        m.metadata.recursion_desired = true;
        m.add_query(Query::query(Name::from_ascii(name).unwrap(), rtype));
        if edns {
            m.set_edns(Edns::new());
        }
        m.to_vec().unwrap()
    }

    fn query(name: &str, rtype: RecordType) -> Vec<u8> {
        query_with(name, rtype, false)
    }

    fn ask(zone: &Zone, name: &str, rtype: RecordType) -> Option<Message> {
        match answer(zone, &query(name, rtype), Transport::Udp) {
            Reply::Answer(bytes) => Some(Message::from_vec(&bytes).unwrap()),
            Reply::Forward => None,
            Reply::Ignore => panic!("a query was ignored"),
        }
    }

    fn rdata(m: &Message) -> Vec<String> {
        m.answers.iter().map(|r| r.data.to_string()).collect()
    }

    #[test]
    fn a_service_answers_every_replica() {
        let m = ask(&front(), "web", RecordType::A).unwrap();
        assert_eq!(m.metadata.response_code, ResponseCode::NoError);
        assert_eq!(rdata(&m), ["10.0.0.2", "10.0.0.3"]);
        assert!(m.answers.iter().all(|r| r.ttl == TTL));
        assert_eq!(m.queries.len(), 1, "the question is echoed");
        let m = ask(&front(), "p-web-2", RecordType::A).unwrap();
        assert_eq!(rdata(&m), ["10.0.0.3"]);
    }

    #[test]
    fn aaaa_answers_v6_addresses_only() {
        let m = ask(&front(), "www", RecordType::AAAA).unwrap();
        assert_eq!(rdata(&m), ["fd00::2"]);
    }

    #[test]
    fn a_known_name_without_that_type_is_noerror_and_empty() {
        let m = ask(&front(), "p-web-2", RecordType::AAAA).unwrap();
        assert_eq!(m.metadata.response_code, ResponseCode::NoError);
        assert!(m.answers.is_empty());
        let m = ask(&front(), "web", RecordType::MX).unwrap();
        assert_eq!(m.metadata.response_code, ResponseCode::NoError);
        assert!(m.answers.is_empty());
    }

    #[test]
    fn names_match_in_any_case_and_with_the_trailing_dot() {
        for name in ["WEB", "Web.", "web."] {
            let m = ask(&front(), name, RecordType::A).unwrap();
            assert_eq!(rdata(&m).len(), 2, "{name}");
        }
    }

    #[test]
    fn a_name_of_another_network_is_forwarded() {
        let back = Zone::new([&network(
            "p_back",
            vec![entry("p-db-1", &["db"], &["10.0.1.2"])],
        )]);
        assert!(ask(&back, "db", RecordType::A).is_some());
        assert!(ask(&front(), "db", RecordType::A).is_none());
        assert!(ask(&back, "web", RecordType::A).is_none());
        assert!(ask(&front(), "example.com", RecordType::A).is_none());
    }

    #[test]
    fn ptr_answers_the_container_name_for_addresses_on_this_network() {
        let m = ask(&front(), "3.0.0.10.in-addr.arpa.", RecordType::PTR).unwrap();
        assert_eq!(rdata(&m), ["p-web-2."]);
        let v6 = Name::from("fd00::2".parse::<IpAddr>().unwrap()).to_ascii();
        let m = ask(&front(), &v6, RecordType::PTR).unwrap();
        assert_eq!(rdata(&m), ["p-web-1."]);
        assert!(ask(&front(), "9.0.0.10.in-addr.arpa.", RecordType::PTR).is_none());
    }

    #[test]
    fn per_container_upstreams_are_found_by_client_address() {
        let mut e = entry("p-web-1", &[], &["10.0.0.2"]);
        e.upstreams = vec!["127.0.0.53:53".parse().unwrap()];
        let zone = Zone::new([&network("n", vec![e, entry("p-db-1", &[], &["10.0.0.4"])])]);
        assert_eq!(
            zone.upstreams("10.0.0.2".parse().unwrap()),
            Some(&["127.0.0.53:53".parse().unwrap()][..])
        );
        assert_eq!(zone.upstreams("10.0.0.4".parse().unwrap()), None);
    }

    #[test]
    fn edns_queries_get_an_opt_record_back() {
        let bytes = query_with("web", RecordType::A, true);
        let Reply::Answer(bytes) = answer(&front(), &bytes, Transport::Udp) else {
            panic!("not answered");
        };
        assert!(Message::from_vec(&bytes).unwrap().edns.is_some());
    }

    #[test]
    fn too_many_replicas_for_udp_set_tc_and_tcp_gets_them_all() {
        let entries = (0..60)
            .map(|i| entry(&format!("p-web-{i}"), &["web"], &[&format!("10.0.0.{i}")]))
            .collect();
        let zone = Zone::new([&network("n", entries)]);
        let q = query("web", RecordType::A);
        let Reply::Answer(udp) = answer(&zone, &q, Transport::Udp) else {
            panic!("not answered");
        };
        let udp = Message::from_vec(&udp).unwrap();
        assert!(udp.metadata.truncation && udp.answers.is_empty());
        let Reply::Answer(tcp) = answer(&zone, &q, Transport::Tcp) else {
            panic!("not answered");
        };
        assert_eq!(Message::from_vec(&tcp).unwrap().answers.len(), 60);
    }

    #[test]
    fn malformed_queries_get_formerr_and_responses_are_ignored() {
        let mut q = query("web", RecordType::A);
        q.truncate(14);
        let Reply::Answer(bytes) = answer(&front(), &q, Transport::Udp) else {
            panic!("not answered");
        };
        assert_eq!(bytes[..2], q[..2], "same id");
        assert_eq!(bytes[3] & 0x0f, 1, "FORMERR");
        assert_eq!(answer(&front(), &[1, 2, 3], Transport::Udp), Reply::Ignore);
        let mut response = query("web", RecordType::A);
        response[2] |= 0x80;
        assert_eq!(answer(&front(), &response, Transport::Udp), Reply::Ignore);
    }

    #[test]
    fn servfail_keeps_id_and_question() {
        let q = query("example.com", RecordType::A);
        let m = Message::from_vec(&servfail(&q).unwrap()).unwrap();
        assert_eq!(m.metadata.response_code, ResponseCode::ServFail);
        assert_eq!(Some(m.metadata.id), message_id(&q));
        assert_eq!(m.queries.len(), 1);
    }

    proptest! {
        #[test]
        fn arbitrary_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..600)) {
            let zone = front();
            let _ = answer(&zone, &bytes, Transport::Udp);
            let _ = answer(&zone, &bytes, Transport::Tcp);
            let _ = servfail(&bytes);
        }

        #[test]
        fn mutated_queries_never_panic(
            flips in proptest::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 1..8),
            cut in any::<prop::sample::Index>(),
        ) {
            let zone = front();
            let mut q = query_with("3.0.0.10.in-addr.arpa.", RecordType::PTR, true);
            for (at, byte) in flips {
                let i = at.index(q.len());
                q[i] = byte;
            }
            q.truncate(cut.index(q.len() + 1));
            let _ = answer(&zone, &q, Transport::Udp);
            let _ = servfail(&q);
        }
    }
}
