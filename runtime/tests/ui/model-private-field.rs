// A field keeps the visibility it is written with.
mod contacts {
    use kustomer_webhooks::{Extra, Str};

    #[kustomer_webhooks::model]
    pub struct Contact {
        #[json("email")]
        email: Option<Str>,
        pub extra: Extra,
    }
}

fn main() {
    let contact = contacts::Contact::default();
    let _ = contact.email;
}
