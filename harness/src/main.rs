fn main() {
    eprintln!("swarm: not built yet");
    std::process::exit(2);
}
