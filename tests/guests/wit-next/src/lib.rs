//! A step built against a future `powernode:step@0.2.0`: the host must refuse it with its
//! version message, not a linker error about a missing import.

wit_bindgen::generate!({
    inline: r#"
        package powernode:step@0.2.0;

        interface log {
            log: func(message: string);
        }

        interface handler {
            describe: func() -> string;
            run: func(config: string) -> result<string, string>;
        }

        world step {
            import log;
            export handler;
        }
    "#,
});

struct WitNext;

impl exports::powernode::step::handler::Guest for WitNext {
    fn describe() -> String {
        "wit_next".into()
    }

    fn run(config: String) -> Result<String, String> {
        powernode::step::log::log(&config);
        Ok(config)
    }
}

export!(WitNext);
