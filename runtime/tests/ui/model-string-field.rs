use kustomer_webhooks::Extra;

#[kustomer_webhooks::model]
pub struct Contact {
    #[json("email")]
    pub email: Option<String>,
    pub extra: Extra,
}

fn main() {}
