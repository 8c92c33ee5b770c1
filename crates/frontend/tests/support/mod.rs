//! A raw PostgreSQL protocol client for tests: frontend messages are built with
//! postgres-protocol (tokio-postgres's encoder, independent of ours); backend messages are read
//! as (type, body) and picked apart with small helpers. Every read has a timeout, so a test
//! never hangs on a server that stays silent.
#![allow(dead_code, clippy::unwrap_used)]

use std::collections::HashMap;
use std::time::Duration;

use bytes::{Buf, BytesMut};
use postgres_protocol::message::frontend;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};

/// How long any single wait in a test may take.
pub const WAIT: Duration = Duration::from_secs(10);

pub struct Raw<S> {
    pub stream: S,
    buf: BytesMut,
    pub out: BytesMut,
}

/// One backend message.
#[derive(Debug, Clone)]
pub struct Msg {
    pub tag: u8,
    pub body: Vec<u8>,
}

impl Msg {
    /// Fields of an ErrorResponse/NoticeResponse by code.
    pub fn fields(&self) -> HashMap<u8, String> {
        let mut map = HashMap::new();
        let mut b = &self.body[..];
        while let Some((&code, rest)) = b.split_first() {
            if code == 0 {
                break;
            }
            let end = rest.iter().position(|c| *c == 0).unwrap();
            map.insert(code, String::from_utf8(rest[..end].to_vec()).unwrap());
            b = &rest[end + 1..];
        }
        map
    }

    pub fn code(&self) -> String {
        self.fields().get(&b'C').cloned().unwrap_or_default()
    }

    pub fn message(&self) -> String {
        self.fields().get(&b'M').cloned().unwrap_or_default()
    }

    /// CommandComplete's tag.
    pub fn tag_text(&self) -> String {
        String::from_utf8(self.body[..self.body.len() - 1].to_vec()).unwrap()
    }

    /// DataRow's values.
    pub fn values(&self) -> Vec<Option<Vec<u8>>> {
        let mut b = &self.body[..];
        let n = b.get_i16();
        (0..n)
            .map(|_| {
                let len = b.get_i32();
                if len < 0 {
                    None
                } else {
                    let v = b[..len as usize].to_vec();
                    b.advance(len as usize);
                    Some(v)
                }
            })
            .collect()
    }

    /// DataRow's values as text.
    pub fn text_values(&self) -> Vec<Option<String>> {
        self.values()
            .into_iter()
            .map(|v| v.map(|v| String::from_utf8(v).unwrap()))
            .collect()
    }

    /// ParameterStatus's (name, value).
    pub fn param(&self) -> (String, String) {
        let parts: Vec<&[u8]> = self.body.split(|b| *b == 0).collect();
        (
            String::from_utf8(parts[0].to_vec()).unwrap(),
            String::from_utf8(parts[1].to_vec()).unwrap(),
        )
    }

    /// RowDescription's (name, type oid, format) per field.
    pub fn columns(&self) -> Vec<(String, u32, i16)> {
        let mut b = &self.body[..];
        let n = b.get_i16();
        (0..n)
            .map(|_| {
                let end = b.iter().position(|c| *c == 0).unwrap();
                let name = String::from_utf8(b[..end].to_vec()).unwrap();
                b.advance(end + 1);
                let _table = b.get_u32();
                let _col = b.get_i16();
                let oid = b.get_u32();
                let _len = b.get_i16();
                let _typmod = b.get_i32();
                let format = b.get_i16();
                (name, oid, format)
            })
            .collect()
    }
}

impl<S: AsyncRead + AsyncWrite + Unpin> Raw<S> {
    pub fn new(stream: S) -> Self {
        Raw {
            stream,
            buf: BytesMut::new(),
            out: BytesMut::new(),
        }
    }

    /// Writes what the builders put in `out`. Write errors are ignored: the server may have
    /// closed the connection on purpose, which the next `recv` shows.
    pub async fn send(&mut self) {
        let data = self.out.split();
        let _ = self.stream.write_all(&data).await;
    }

    pub async fn send_bytes(&mut self, data: &[u8]) {
        let _ = self.stream.write_all(data).await;
    }

    /// Startup with these parameters (protocol 3.0).
    pub async fn startup(&mut self, params: &[(&str, &str)]) {
        frontend::startup_message(params.iter().copied(), &mut self.out).unwrap();
        self.send().await;
    }

    pub fn query(&mut self, q: &str) -> &mut Self {
        frontend::query(q, &mut self.out).unwrap();
        self
    }

    pub fn parse(&mut self, name: &str, q: &str, types: &[u32]) -> &mut Self {
        frontend::parse(name, q, types.iter().copied(), &mut self.out).unwrap();
        self
    }

    /// Bind with text parameters and the given result formats.
    pub fn bind(
        &mut self,
        portal: &str,
        stmt: &str,
        params: &[Option<&str>],
        results: &[i16],
    ) -> &mut Self {
        let r = frontend::bind(
            portal,
            stmt,
            Some(0),
            params.iter(),
            |p, buf| match p {
                Some(v) => {
                    buf.extend_from_slice(v.as_bytes());
                    Ok(postgres_protocol::IsNull::No)
                }
                None => Ok(postgres_protocol::IsNull::Yes),
            },
            results.iter().copied(),
            &mut self.out,
        );
        assert!(r.is_ok());
        self
    }

    pub fn describe(&mut self, kind: u8, name: &str) -> &mut Self {
        frontend::describe(kind, name, &mut self.out).unwrap();
        self
    }

    pub fn execute(&mut self, portal: &str, max_rows: i32) -> &mut Self {
        frontend::execute(portal, max_rows, &mut self.out).unwrap();
        self
    }

    pub fn close(&mut self, kind: u8, name: &str) -> &mut Self {
        frontend::close(kind, name, &mut self.out).unwrap();
        self
    }

    pub fn sync(&mut self) -> &mut Self {
        frontend::sync(&mut self.out);
        self
    }

    pub fn flush(&mut self) -> &mut Self {
        frontend::flush(&mut self.out);
        self
    }

    pub fn copy_data(&mut self, data: &[u8]) -> &mut Self {
        self.out.extend_from_slice(b"d");
        self.out
            .extend_from_slice(&(data.len() as i32 + 4).to_be_bytes());
        self.out.extend_from_slice(data);
        self
    }

    pub fn copy_done(&mut self) -> &mut Self {
        frontend::copy_done(&mut self.out);
        self
    }

    pub fn copy_fail(&mut self, msg: &str) -> &mut Self {
        frontend::copy_fail(msg, &mut self.out).unwrap();
        self
    }

    pub fn terminate(&mut self) -> &mut Self {
        frontend::terminate(&mut self.out);
        self
    }

    /// The next backend message; `None` if the server closed the connection.
    pub async fn recv(&mut self) -> Option<Msg> {
        tokio::time::timeout(WAIT, self.recv_inner())
            .await
            .expect("timed out waiting for the server")
    }

    async fn recv_inner(&mut self) -> Option<Msg> {
        loop {
            if self.buf.len() >= 5 {
                let len = i32::from_be_bytes(self.buf[1..5].try_into().unwrap()) as usize;
                if self.buf.len() > len {
                    let frame = self.buf.split_to(len + 1);
                    return Some(Msg {
                        tag: frame[0],
                        body: frame[5..].to_vec(),
                    });
                }
            }
            match self.stream.read_buf(&mut self.buf).await {
                Ok(0) | Err(_) => return None,
                Ok(_) => {}
            }
        }
    }

    /// A single raw byte (the answer to SSLRequest).
    pub async fn recv_byte(&mut self) -> Option<u8> {
        if !self.buf.is_empty() {
            return Some(self.buf.split_to(1)[0]);
        }
        let mut b = [0u8; 1];
        match tokio::time::timeout(WAIT, self.stream.read(&mut b))
            .await
            .unwrap()
        {
            Ok(1) => Some(b[0]),
            _ => None,
        }
    }

    /// Reads messages until ReadyForQuery; returns them all (the RFQ last).
    pub async fn until_ready(&mut self) -> Vec<Msg> {
        let mut msgs = Vec::new();
        loop {
            let m = self
                .recv()
                .await
                .expect("connection closed before ReadyForQuery");
            let done = m.tag == b'Z';
            msgs.push(m);
            if done {
                return msgs;
            }
        }
    }

    /// The tags of messages until ReadyForQuery, as a string ("TDDCZ").
    pub async fn tags_until_ready(&mut self) -> String {
        self.until_ready()
            .await
            .iter()
            .map(|m| m.tag as char)
            .collect()
    }

    /// Waits for the server to close the connection; returns what it sent first.
    pub async fn until_closed(&mut self) -> Vec<Msg> {
        let mut msgs = Vec::new();
        while let Some(m) = self.recv().await {
            msgs.push(m);
        }
        msgs
    }

    /// True if nothing arrives within `d`.
    pub async fn silent_for(&mut self, d: Duration) -> bool {
        if self.buf.len() >= 5 {
            return false;
        }
        tokio::time::timeout(d, self.stream.read_buf(&mut self.buf))
            .await
            .is_err()
    }
}

/// The tags of `msgs` as a string.
pub fn tags(msgs: &[Msg]) -> String {
    msgs.iter().map(|m| m.tag as char).collect()
}
