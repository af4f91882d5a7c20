//! The namespace network's faults cut real traffic, heal restores it, and dropping the
//! network leaves no namespace, link or bridge behind: TCP connects between namespaces
//! (python3 on each side) before, during and after each fault.

use kdss_testkit::netns::{Net, netns_unavailable};
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
