//! Errors say exactly what happened: one variant per cause, one wording for the range, and the
//! underlying error kept as the source.

mod common;

use std::error::Error as _;
use std::time::Duration;

use chime::{Cause, Error, Interest, Scheduler};

#[test]
fn no_runtime_is_its_own_error_not_an_invalid_option() {
    let err = Scheduler::builder().try_start().unwrap_err();
    assert_eq!(err, Error::NoRuntime);
    assert!(err.to_string().contains("no tokio runtime"), "{err}");
}

#[tokio::test]
async fn shards_out_of_range_are_refused_not_clamped() {
    let err = Scheduler::builder().shards(0).try_start().unwrap_err();
    assert_eq!(common::invalid_option::<()>(Err(err.clone())), "shards");
    assert_eq!(err.to_string(), "invalid option `shards`: must be between 1 and 1024, not 0");
    assert!(Scheduler::builder().shards(4096).try_start().is_err());
    assert!(
        Scheduler::builder().shards(3).try_start().is_ok(),
        "rounded up to a power of two, inside the range"
    );
}

#[tokio::test(start_paused = true)]
async fn every_duration_past_the_range_gets_the_same_words() -> Result<(), Error> {
    let sched = Scheduler::start();
    let words = "exceeds chime's range of 584 years from the scheduler's start";
    let reasons = [
        ("delay", sched.after(Duration::MAX, |_| {}).unwrap_err()),
        ("interval", sched.recurrent(Duration::MAX, |_| {}).unwrap_err()),
        ("interval", sched.timer(Duration::MAX).on_expire(|_| {}).arm().map(drop).unwrap_err()),
        (
            "jitter",
            sched
                .timer(Duration::from_secs(1))
                .jitter(Duration::MAX)
                .on_expire(|_| {})
                .arm()
                .map(drop)
                .unwrap_err(),
        ),
    ];
    for (option, err) in reasons {
        let Error::InvalidOption(invalid) = err else { panic!("{err:?}") };
        assert_eq!((invalid.option(), invalid.reason()), (option, words));
    }
    let id = sched.after(Duration::from_secs(1), |_| {})?;
    let Error::InvalidOption(invalid) = sched.reschedule(id, Duration::MAX).unwrap_err() else {
        unreachable!()
    };
    assert_eq!((invalid.option(), invalid.reason()), ("delay", words));
    Ok(())
}

#[tokio::test(start_paused = true)]
async fn a_stale_timer_an_unknown_watch_and_a_missing_member_are_different_errors() -> Result<(), Error> {
    let sched = Scheduler::start();
    let id = sched.after(Duration::from_secs(1), |_| {})?;
    sched.cancel(id)?;
    assert_eq!(sched.cancel(id), Err(Error::NotFound));
    let (reader, _writer) = std::io::pipe().unwrap();
    let watch = sched.watch(&reader, Interest::READABLE, |_, _| {})?;
    sched.unwatch(watch)?;
    let gone = sched.unwatch(watch).unwrap_err();
    assert_eq!(gone, Error::UnknownWatch(watch));
    assert_eq!(gone.to_string(), format!("no {watch}: it was stopped, or its callback panicked"));
    let group = sched.group(2, |_| ());
    let missing = group.run_on(5, |_| ()).await.unwrap_err();
    assert_eq!(missing, Error::NoSuchMember { index: 5, members: 2 });
    assert_eq!(missing.to_string(), "no member 5 in a worker group of 2");
    Ok(())
}

#[tokio::test]
async fn an_io_error_keeps_the_system_error_as_its_source() {
    let sched = Scheduler::start();
    let file = std::fs::File::open("Cargo.toml").unwrap();
    let err = sched.watch(&file, Interest::READABLE, |_, _| {}).unwrap_err();
    let Error::Io { kind, .. } = &err else { panic!("{err:?}") };
    let cause = err.source().expect("a source").downcast_ref::<Cause>().expect("a Cause");
    let io = cause.get_ref().downcast_ref::<std::io::Error>().expect("the io::Error itself");
    assert_eq!(io.kind(), *kind);
    assert!(err.to_string().ends_with(&io.to_string()), "{err}");
}

#[test]
fn a_store_error_keeps_the_driver_error_as_its_source() {
    let dir = std::env::temp_dir().join(format!("chime-errors-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    // A directory is not a database file.
    let err = chime::cluster::Sqlite::open(&dir).unwrap_err();
    std::fs::remove_dir_all(&dir).ok();
    assert!(matches!(err, Error::Store { backend: "sqlite", source: Some(_), .. }), "{err:?}");
    let cause = err.source().unwrap().downcast_ref::<Cause>().unwrap();
    assert!(cause.get_ref().downcast_ref::<rusqlite::Error>().is_some(), "{cause:?}");
    let plain = Error::store("sqlite", "the claim timed out");
    assert!(plain.source().is_none(), "words alone have no source");
}

#[test]
fn a_kernel_ticker_outside_a_runtime_is_no_runtime_not_a_panic() {
    #[cfg(target_os = "linux")]
    assert_eq!(chime::Ticker::new(chime::Clock::Monotonic).unwrap_err(), Error::NoRuntime);
}

#[test]
fn a_runtime_without_io_is_an_io_error_not_a_panic() {
    let runtime = tokio::runtime::Builder::new_current_thread().enable_time().build().unwrap();
    runtime.block_on(async {
        let sched = Scheduler::start();
        let (reader, _writer) = std::io::pipe().unwrap();
        let err = sched.watch(&reader, Interest::READABLE, |_, _| {}).unwrap_err();
        assert!(matches!(err, Error::Io { kind: std::io::ErrorKind::Unsupported, .. }), "{err:?}");
        assert!(err.to_string().contains("enable_io"), "{err}");
        #[cfg(target_os = "linux")]
        assert!(matches!(chime::Ticker::new(chime::Clock::Monotonic), Err(Error::Io { .. })));
    });
}
