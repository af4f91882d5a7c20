//! The namespace network's faults cut real traffic, heal restores it, and dropping the
//! network leaves no namespace, link or bridge behind: TCP connects between namespaces
//! (python3 on each side) before, during and after each fault.

use kdss_testkit::netns::{Impairment, Net, netns_unavailable};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

fn skip() -> bool {
    let why = netns_unavailable().or_else(|| {
        let ok = Command::new("python3")
            .arg("-V")
            .output()
            .is_ok_and(|o| o.status.success());
        (!ok).then(|| "python3 is missing".to_string())
    });
    let Some(why) = why else { return false };
    assert!(
        std::env::var_os("KDSS_REQUIRE_NETNS").is_none(),
        "KDSS_REQUIRE_NETNS is set but {why}"
    );
    eprintln!("skipped: {why}");
    true
}

/// A TCP listener on `ip:7000` inside namespace `ns`, killed on drop.
struct Listener(Child);
impl Drop for Listener {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}
fn listen(ns: &str, ip: &str) -> Listener {
    let prog = format!(
        "import socket\ns=socket.socket()\ns.setsockopt(socket.SOL_SOCKET,socket.SO_REUSEADDR,1)\n\
         s.bind(('{ip}',7000))\ns.listen(16)\nwhile True:\n  c,_=s.accept()\n  c.close()\n"
    );
    let child = Command::new("ip")
        .args(["netns", "exec", ns, "python3", "-c", &prog])
        .stdin(Stdio::null())
        .spawn()
        .expect("start the listener");
    Listener(child)
}

/// Whether a TCP connect from namespace `ns` to `ip:7000` succeeds within 2 s.
fn connects(ns: &str, ip: &str) -> bool {
    let prog = format!("import socket\nsocket.create_connection(('{ip}',7000),timeout=2).close()");
    Command::new("ip")
        .args(["netns", "exec", ns, "python3", "-c", &prog])
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|s| s.success())
}

/// How long a TCP connect and a 1 MiB echo round trip from namespace `ns` to
/// `ip:7001` took (`None`: it failed within 10 s).
fn echo_time(ns: &str, ip: &str) -> Option<Duration> {
    let prog = format!(
        "import socket,time\nt=time.monotonic()\n\
         c=socket.create_connection(('{ip}',7001),timeout=10)\n\
         data=bytes(range(256))*4096\nc.sendall(data)\nc.shutdown(socket.SHUT_WR)\n\
         got=b''\nwhile True:\n  b=c.recv(65536)\n  if not b: break\n  got+=b\n\
         assert got==data, len(got)\nprint(time.monotonic()-t)"
    );
    let o = Command::new("ip")
        .args(["netns", "exec", ns, "python3", "-c", &prog])
        .stderr(Stdio::null())
        .output()
        .ok()?;
    let secs: f64 = String::from_utf8_lossy(&o.stdout).trim().parse().ok()?;
    o.status.success().then(|| Duration::from_secs_f64(secs))
}

/// An echo server on `ip:7001` inside namespace `ns`: sends back what it got.
fn echo_server(ns: &str, ip: &str) -> Listener {
    let prog = format!(
        "import socket,threading\ns=socket.socket()\n\
         s.setsockopt(socket.SOL_SOCKET,socket.SO_REUSEADDR,1)\ns.bind(('{ip}',7001))\n\
         s.listen(16)\ndef serve(c):\n  while True:\n    b=c.recv(65536)\n    \
         if not b: break\n    c.sendall(b)\n  c.close()\n\
         while True:\n  c,_=s.accept()\n  threading.Thread(target=serve,args=(c,)).start()\n"
    );
    let child = Command::new("ip")
        .args(["netns", "exec", ns, "python3", "-c", &prog])
        .stdin(Stdio::null())
        .spawn()
        .expect("start the echo server");
    Listener(child)
}

/// A short wait between connect attempts (a plain blocking test: no reactor to block).
#[allow(clippy::disallowed_methods)]
fn pause() {
    std::thread::sleep(Duration::from_millis(200));
}

#[test]
fn cuts_drop_traffic_heal_restores_it_and_drop_cleans_up() {
    if skip() {
        return;
    }
    let names: Vec<String> = ["a", "b", "c"].iter().map(|s| s.to_string()).collect();
    let mut net = Net::new(&names).expect("make the network");
    let id = net.id.clone();
    let (a, b, c) = (
        net.host("a").clone(),
        net.host("b").clone(),
        net.host("c").clone(),
    );
    let _lb = listen(&b.ns, &b.ip);
    let _la = listen(&a.ns, &a.ip);
    let start = Instant::now();
    while !connects(&a.ns, &b.ip) {
        assert!(
            start.elapsed() < Duration::from_secs(20),
            "a never reached b's listener"
        );
        pause();
    }
    while !connects(&b.ns, &a.ip) {
        assert!(
            start.elapsed() < Duration::from_secs(20),
            "b never reached a's listener"
        );
        pause();
    }

    net.partition(&["a"], &["b"]).unwrap();
    assert!(!connects(&a.ns, &b.ip), "a reached b across a partition");
    assert!(!connects(&b.ns, &a.ip), "b reached a across a partition");
    assert!(connects(&c.ns, &b.ip), "c lost b though only a was cut");
    net.heal().unwrap();
    assert!(connects(&a.ns, &b.ip), "a cannot reach b after the heal");

    net.cut_one_way("a", "b").unwrap();
    assert!(
        !connects(&a.ns, &b.ip),
        "a reached b though a's packets to b drop"
    );
    net.heal().unwrap();

    net.isolate("b").unwrap();
    assert!(!connects(&c.ns, &b.ip), "c reached an isolated b");
    net.heal().unwrap();

    net.set_link("b", false).unwrap();
    assert!(!connects(&a.ns, &b.ip), "a reached b with b's link down");
    net.set_link("b", true).unwrap();
    let start = Instant::now();
    while !connects(&a.ns, &b.ip) {
        assert!(
            start.elapsed() < Duration::from_secs(20),
            "b's link never came back"
        );
        pause();
    }

    drop((_lb, _la));
    drop(net);
    let ns = Command::new("ip").args(["netns", "list"]).output().unwrap();
    let links = Command::new("ip").args(["-o", "link"]).output().unwrap();
    for out in [ns.stdout, links.stdout] {
        let text = String::from_utf8_lossy(&out).to_string();
        assert!(!text.contains(&id), "left behind after drop: {text}");
    }
}

/// A shaped link carries traffic unchanged until impaired; a delay shows in every round
/// trip, loss is survived by TCP, total loss cuts the host off, and heal restores it.
#[test]
fn shaped_links_delay_and_drop_and_heal() {
    if skip() {
        return;
    }
    let names: Vec<String> = ["a", "b"].iter().map(|s| s.to_string()).collect();
    let net = Net::with_shaped(&names, &["b".to_string()]).expect("make the network");
    let (a, b) = (net.host("a").clone(), net.host("b").clone());
    let _echo = echo_server(&b.ns, &b.ip);
    let start = Instant::now();
    let plain = loop {
        if let Some(t) = echo_time(&a.ns, &b.ip) {
            break t;
        }
        assert!(
            start.elapsed() < Duration::from_secs(20),
            "a never reached b's echo server over the shaped link"
        );
        pause();
    };
    let delay = Duration::from_millis(100);
    net.impair(
        "b",
        Impairment {
            delay,
            jitter: Duration::from_millis(20),
            loss: 0.0,
        },
    )
    .unwrap();
    let slow = echo_time(&a.ns, &b.ip).expect("an echo over the delayed link");
    eprintln!("1 MiB echo: {plain:?} plain, {slow:?} with 100 ms ± 20 ms each way");
    // A connect's SYN and SYN-ACK and then the data and its echo each cross b's link
    // twice (in and out): at least two round trips of 2 × (100 - 20) ms.
    assert!(
        slow >= Duration::from_millis(320),
        "the delayed link took {slow:?}, less than two round trips of its delay"
    );
    net.impair(
        "b",
        Impairment {
            loss: 0.1,
            ..Impairment::default()
        },
    )
    .unwrap();
    let before = net.dropped("b");
    let lossy = echo_time(&a.ns, &b.ip).expect("TCP gets 1 MiB through 10 % loss");
    let dropped = net.dropped("b") - before;
    eprintln!("1 MiB echo with 10 % loss each way: {lossy:?}, {dropped} frames dropped");
    // About 1,500 frames carry the megabyte there and back: 10 % of them is ~150.
    assert!(
        dropped >= 20,
        "the lossy link dropped only {dropped} frames"
    );
    net.impair(
        "b",
        Impairment {
            loss: 1.0,
            ..Impairment::default()
        },
    )
    .unwrap();
    assert!(
        !connects(&a.ns, &b.ip),
        "a reached b over a link that drops all"
    );
    let mut net = net;
    net.heal().unwrap();
    assert!(
        echo_time(&a.ns, &b.ip).is_some(),
        "a cannot reach b after the heal"
    );
    assert!(
        net.impair("a", Impairment::default()).is_err(),
        "a veth host cannot be impaired"
    );
    let id = net.id.clone();
    drop(_echo);
    drop(net);
    let links = Command::new("ip").args(["-o", "link"]).output().unwrap();
    let text = String::from_utf8_lossy(&links.stdout).to_string();
    assert!(!text.contains(&id), "left behind after drop: {text}");
}
