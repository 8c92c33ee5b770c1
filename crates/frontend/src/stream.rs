//! A client connection's byte stream: TCP or Unix-domain socket.

use std::io;
use std::pin::Pin;
use std::task::{Context, Poll};

use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::{TcpStream, UnixStream};

/// The socket of one client connection. Replication handlers get it whole and may split it
/// (`TcpStream::into_split`, `UnixStream::into_split`) to read and write concurrently.
#[derive(Debug)]
pub enum ClientStream {
    Tcp(TcpStream),
    Unix(UnixStream),
}

impl ClientStream {
    /// A `recv` that never waits (`WouldBlock` when nothing is there), for the spin in
    /// `Transport::fill`. It calls the kernel directly: tokio's own `try_read` first consults
    /// readiness cached from epoll, which a spinning thread never refreshes, so it would keep
    /// answering `WouldBlock` while data sits in the socket.
    pub(crate) fn recv_now(&self, buf: &mut [u8]) -> io::Result<usize> {
        use std::io::Read;
        let sock = match self {
            ClientStream::Tcp(s) => socket2::SockRef::from(s),
            ClientStream::Unix(s) => socket2::SockRef::from(s),
        };
        // The socket is non-blocking (tokio set O_NONBLOCK), so this read cannot block.
        (&*sock).read(buf)
    }

    /// A second handle to the same socket (`dup`), non-blocking like the first, for a writer
    /// on another thread (the walsender's direct send). Whoever uses it must keep its writes
    /// from interleaving with the stream's own.
    pub fn duplicate(&self) -> io::Result<socket2::Socket> {
        use std::os::fd::AsFd;
        let fd = match self {
            ClientStream::Tcp(s) => s.as_fd().try_clone_to_owned()?,
            ClientStream::Unix(s) => s.as_fd().try_clone_to_owned()?,
        };
        Ok(socket2::Socket::from(fd))
    }
}

impl AsyncRead for ClientStream {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        match self.get_mut() {
            ClientStream::Tcp(s) => Pin::new(s).poll_read(cx, buf),
            ClientStream::Unix(s) => Pin::new(s).poll_read(cx, buf),
        }
    }
}

impl AsyncWrite for ClientStream {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        match self.get_mut() {
            ClientStream::Tcp(s) => Pin::new(s).poll_write(cx, buf),
            ClientStream::Unix(s) => Pin::new(s).poll_write(cx, buf),
        }
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            ClientStream::Tcp(s) => Pin::new(s).poll_flush(cx),
            ClientStream::Unix(s) => Pin::new(s).poll_flush(cx),
        }
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            ClientStream::Tcp(s) => Pin::new(s).poll_shutdown(cx),
            ClientStream::Unix(s) => Pin::new(s).poll_shutdown(cx),
        }
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[io::IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        match self.get_mut() {
            ClientStream::Tcp(s) => Pin::new(s).poll_write_vectored(cx, bufs),
            ClientStream::Unix(s) => Pin::new(s).poll_write_vectored(cx, bufs),
        }
    }

    fn is_write_vectored(&self) -> bool {
        match self {
            ClientStream::Tcp(s) => s.is_write_vectored(),
            ClientStream::Unix(s) => s.is_write_vectored(),
        }
    }
}
