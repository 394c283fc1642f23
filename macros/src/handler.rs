//! `#[kustomer_webhook]`: parse the arguments, check the function, expand.

use proc_macro2::{Span, TokenStream, TokenTree};
use quote::{quote, quote_spanned};
use syn::parse::{Parse, ParseStream};
use syn::spanned::Spanned;
use syn::{FnArg, Item, ItemFn, LitStr, ReturnType, Token, Type, bracketed, parse2};

/// Every event name Kustomer documents. A handler naming another one is a
/// typo more often than not; events without a type go to an `OtherEvent`
/// handler.
pub const KNOWN_EVENTS: [&str; 12] = [
    "kustomer.conversation.create",
    "kustomer.conversation.update",
    "kustomer.customer.create",
    "kustomer.customer.update",
    "kustomer.message.create",
    "kustomer.message.update",
    "kustomer.team.create",
    "kustomer.team.update",
    "kustomer.user.create",
    "kustomer.user.update",
    "kustomer.tag.create",
    "kustomer.tag.update",
];

/// The known events without a generated type (no sample to build one from):
/// an `OtherEvent` handler gets them.
const UNTYPED_EVENTS: [&str; 2] = ["kustomer.tag.create", "kustomer.tag.update"];

/// The attribute's arguments: none, `event = "…"`, or `events = ["…", …]`;
/// and `crate = "path"`, where the runtime is reached under another name.
#[derive(Default)]
struct Args {
    events: Option<Vec<LitStr>>,
    krate: Option<syn::Path>,
}

/// `crate = "path"`'s path: how the expansion reaches the runtime where its
/// dependency is renamed or re-exported (`crate = "my_facade::kustomer_webhooks"`).
/// Parsed after `crate` and its `=`; `seen` says whether it was given before.
pub fn crate_path(input: ParseStream, seen: bool, key: Span) -> syn::Result<syn::Path> {
    if seen {
        return Err(syn::Error::new(key, "give `crate` once"));
    }
    let lit: LitStr = input.parse().map_err(|e| {
        syn::Error::new(
            e.span(),
            "expected the runtime's path as a string: `crate = \"my_facade::kustomer_webhooks\"`",
        )
    })?;
    lit.parse_with(syn::Path::parse_mod_style).map_err(|_| {
        syn::Error::new_spanned(
            &lit,
            "expected a path to the runtime, such as `\"kw\"` or `\"my_facade::kustomer_webhooks\"`",
        )
    })
}

/// The path the expansion reaches the runtime by: `::kustomer_webhooks`,
/// or the name the crate's `Cargo.toml` gives it when it renames it
/// ([`crate::manifest`]), unless `crate = "…"` says otherwise.
pub fn runtime_path(krate: Option<&syn::Path>, span: Span) -> TokenStream {
    match krate {
        Some(path) => quote!(#path),
        None => match crate::manifest::renamed_runtime()
            .and_then(|name| syn::parse_str::<syn::Ident>(&name).ok())
        {
            Some(name) => {
                let name = syn::Ident::new(&name.to_string(), span);
                quote_spanned!(span=> ::#name)
            }
            None => quote_spanned!(span=> ::kustomer_webhooks),
        },
    }
}

impl Parse for Args {
    fn parse(input: ParseStream) -> syn::Result<Self> {
        let mut args = Args::default();
        while !input.is_empty() {
            if let Some(token) = input.parse::<Option<Token![crate]>>()? {
                input.parse::<Token![=]>().map_err(|_| {
                    syn::Error::new(
                        token.span,
                        "`crate` needs the runtime's path: `crate = \"my_facade::kustomer_webhooks\"`",
                    )
                })?;
                args.krate = Some(crate_path(input, args.krate.is_some(), token.span)?);
                if !input.is_empty() {
                    input.parse::<Token![,]>()?;
                }
                continue;
            }
            if input.peek(LitStr) {
                let lit: LitStr = input.parse()?;
                return Err(syn::Error::new_spanned(
                    &lit,
                    format!(
                        "name the event with `event = …`: `#[kustomer_webhook(event = \"{}\")]`",
                        lit.value()
                    ),
                ));
            }
            let key: syn::Ident = input.parse().map_err(|e| {
                syn::Error::new(
                    e.span(),
                    "expected `event = \"…\"`, `events = [\"…\", …]` or `crate = \"…\"`",
                )
            })?;
            if args.events.is_some() {
                return Err(syn::Error::new_spanned(
                    &key,
                    "give the events once: `event = \"…\"` or `events = [\"…\", …]`",
                ));
            }
            let value_of = |key: &syn::Ident| {
                let example = if key == "events" {
                    "[\"kustomer.customer.update\", …]"
                } else {
                    "\"kustomer.customer.update\""
                };
                format!("`{key}` needs a value: `{key} = {example}`")
            };
            if key != "event" && key != "events" {
                // Said below, as an unknown argument.
            } else if input.is_empty() || input.peek(Token![,]) {
                return Err(syn::Error::new_spanned(&key, value_of(&key)));
            } else {
                input
                    .parse::<Token![=]>()
                    .map_err(|e| syn::Error::new(e.span(), value_of(&key)))?;
                if input.is_empty() || input.peek(Token![,]) {
                    return Err(syn::Error::new_spanned(&key, value_of(&key)));
                }
            }
            let event_string = |p: ParseStream| {
                p.parse::<LitStr>().map_err(|e| {
                    syn::Error::new(
                        e.span(),
                        "expected the event name as a string: `\"kustomer.customer.update\"`",
                    )
                })
            };
            if key == "event" {
                if input.peek(syn::token::Bracket) {
                    return Err(syn::Error::new(
                        input.span(),
                        "`event` names one event; for several, write `events = [\"kustomer.customer.create\", \"kustomer.customer.update\"]`",
                    ));
                }
                let lit: LitStr = input.parse().map_err(|e| {
                    syn::Error::new(e.span(), "expected the event name as a string: `event = \"kustomer.customer.update\"`")
                })?;
                args.events = Some(vec![lit]);
            } else if key == "events" {
                if let Ok(lit) = input.fork().parse::<LitStr>() {
                    return Err(syn::Error::new_spanned(
                        &lit,
                        format!(
                            "`events` is a list: `events = [\"{0}\"]`, or `event = \"{0}\"` for one",
                            lit.value()
                        ),
                    ));
                }
                let content;
                bracketed!(content in input);
                let list = content.parse_terminated(event_string, Token![,])?;
                if list.is_empty() {
                    return Err(syn::Error::new_spanned(
                        &key,
                        "`events` needs at least one event name",
                    ));
                }
                let list: Vec<LitStr> = list.into_iter().collect();
                for (i, lit) in list.iter().enumerate() {
                    if list[..i].iter().any(|before| before.value() == lit.value()) {
                        return Err(syn::Error::new_spanned(
                            lit,
                            format!("`{}` is listed twice: give each event once", lit.value()),
                        ));
                    }
                }
                args.events = Some(list);
            } else {
                return Err(syn::Error::new_spanned(
                    &key,
                    format!(
                        "unknown argument `{key}`: expected `event = \"…\"`, `events = [\"…\", …]` or `crate = \"…\"`"
                    ),
                ));
            }
            if !input.is_empty() {
                input.parse::<Token![,]>()?;
            }
        }
        Ok(args)
    }
}

/// Expands the attribute. On error the function is emitted next to a
/// `compile_error!`, so one mistake gives one error: as written, but for what
/// would make rustc report the mistake a second time.
pub fn expand(args: TokenStream, item: TokenStream) -> TokenStream {
    let func = match parse2::<Item>(item.clone()) {
        Ok(Item::Fn(func)) => func,
        Ok(_) => {
            let e = syn::Error::new(
                first_token_span(&item),
                "#[kustomer_webhook] goes on a function: `async fn on_update(event: CustomerUpdate) { … }`",
            )
            .to_compile_error();
            return quote!(#item #e);
        }
        Err(e) => {
            // A function whose body alone does not parse: rustc says where,
            // from the function emitted as written, and the attribute's own
            // error would say it a second time.
            if only_the_body_fails(&item) {
                return item;
            }
            let e = e.to_compile_error();
            return quote!(#item #e);
        }
    };
    match check(args, &func) {
        Ok(args) => expansion(&func, &args),
        Err(refused) => refused,
    }
}

/// Whether `item` is a function whose attributes and signature parse, with
/// a body in braces (that does not parse, when the whole did not).
fn only_the_body_fails(item: &TokenStream) -> bool {
    struct Function;
    impl Parse for Function {
        fn parse(input: ParseStream) -> syn::Result<Self> {
            input.call(syn::Attribute::parse_outer)?;
            input.parse::<syn::Visibility>()?;
            input.parse::<syn::Signature>()?;
            let body: proc_macro2::Group = input.parse()?;
            if body.delimiter() != proc_macro2::Delimiter::Brace || !input.is_empty() {
                return Err(input.error("not a function's body"));
            }
            Ok(Function)
        }
    }
    parse2::<Function>(item.clone()).is_ok()
}

fn combine(errors: &mut Option<syn::Error>, e: syn::Error) {
    match errors {
        Some(all) => all.combine(e),
        None => *errors = Some(e),
    }
}

/// The parsed arguments; or, when the attribute refuses the function, the
/// function to emit with the errors.
fn check(args: TokenStream, func: &ItemFn) -> Result<Args, TokenStream> {
    let mut errors = None;
    let mut shown = func.clone();
    // Whether an error is in `shown` itself.
    let mut failed = false;
    let args = match parse2::<Args>(args) {
        Ok(a) => a,
        Err(e) => {
            combine(&mut errors, e);
            Args::default()
        }
    };
    let sig = &func.sig;
    let mut types = Vec::new();
    for input in &sig.inputs {
        match input {
            FnArg::Receiver(r) => combine(
                &mut errors,
                syn::Error::new_spanned(r, "a webhook handler is a free function, not a method"),
            ),
            FnArg::Typed(t) => types.push(&*t.ty),
        }
    }
    if !sig.generics.params.is_empty() || sig.generics.where_clause.is_some() {
        let message = generics_message(&sig.generics, &types);
        // Where it is written: the parameters, or a `where` clause alone
        // (which the generics' own tokens leave out).
        let e = match &sig.generics.where_clause {
            Some(clause) if sig.generics.params.is_empty() => {
                syn::Error::new_spanned(clause, message)
            }
            _ => syn::Error::new_spanned(&sig.generics, message),
        };
        combine(&mut errors, e);
    }
    // The attribute given again below this one: one function is one
    // handler (several events go in one `events = […]`).
    if let Some(at) = func.attrs.iter().position(|a| {
        a.path()
            .segments
            .last()
            .is_some_and(|s| s.ident == "kustomer_webhook")
    }) {
        combine(
            &mut errors,
            syn::Error::new_spanned(
                &func.attrs[at],
                "`#[kustomer_webhook]` is given twice: one function is one handler; for several \
                 events, list them in one: `#[kustomer_webhook(events = [\"…\", \"…\"])]`",
            ),
        );
        shown.attrs.remove(at);
    }
    if let Some(c) = &sig.constness {
        combine(
            &mut errors,
            syn::Error::new_spanned(c, "a webhook handler cannot be `const`"),
        );
        // Else rustc finds what a `const fn` cannot do in the body.
        shown.sig.constness = None;
    }
    if let syn::Safety::Unsafe(u) = &sig.safety {
        combine(
            &mut errors,
            syn::Error::new_spanned(
                u,
                "a webhook handler cannot be `unsafe`: the dispatcher calls it as a safe function",
            ),
        );
    }
    if let Some(abi) = &sig.abi {
        combine(
            &mut errors,
            syn::Error::new_spanned(
                abi,
                "a webhook handler is a Rust function: remove the `extern` ABI",
            ),
        );
    }
    if types.is_empty() {
        combine(
            &mut errors,
            syn::Error::new(
                sig.paren_token.span.join(),
                "a webhook handler takes the event, and optionally `State<T>`: found 0 parameter(s)",
            ),
        );
    } else if types.len() > 2 {
        let extra: Vec<_> = sig.inputs.iter().skip(2).collect();
        combine(
            &mut errors,
            syn::Error::new_spanned(
                quote!(#(#extra)*),
                format!(
                    "a webhook handler takes the event, and optionally `State<T>`: found {} parameter(s)",
                    types.len()
                ),
            ),
        );
    }
    for ty in &types {
        if let Some(i) = find_impl_trait(ty) {
            combine(
                &mut errors,
                syn::Error::new_spanned(
                    i,
                    "a webhook handler's parameters are named types, not `impl Trait`: `event: CustomerUpdate`",
                ),
            );
        }
    }
    if let ReturnType::Type(_, ty) = &sig.output {
        if let Some(i) = find_impl_trait(ty) {
            combine(
                &mut errors,
                syn::Error::new_spanned(
                    i,
                    "a webhook handler returns `()` or `Result<(), E>`, not `impl Trait`: for a future, write an `async fn`",
                ),
            );
        } else if let Some(b) = unshared_box_error(ty) {
            combine(
                &mut errors,
                syn::Error::new_spanned(
                    b,
                    "the error type must be `Send + Sync + 'static`: for `Box<dyn Error>` write `Box<dyn Error + Send + Sync>`",
                ),
            );
        }
    }
    let state_first = types.len() == 2 && names_state(types[0]) && !names_state(types[1]);
    if state_first {
        combine(
            &mut errors,
            syn::Error::new_spanned(
                types[0],
                "the event comes first, then the shared state: `fn on_update(event: CustomerUpdate, state: State<T>)`",
            ),
        );
    } else if let Some(Type::Reference(r)) = types.first() {
        let inner = &r.elem;
        combine(
            &mut errors,
            syn::Error::new_spanned(
                r,
                format!(
                    "a webhook handler takes its event by value: `{}`, not a reference",
                    quote!(#inner)
                ),
            ),
        );
    }
    // A second parameter of another type than `State<T>` is reported by the
    // compiler, which knows a `State` by any name (`use … as HookState`, an
    // alias) and tells it from axum's.
    if let Some((ty, msg)) = types
        .get(1)
        .filter(|t| names_state(t))
        .and_then(|t| state_inner(t))
        .and_then(unshared_state)
    {
        combine(&mut errors, syn::Error::new_spanned(ty, msg));
    }
    // A `State` without its type is reported in place of the type's argument:
    // the function, emitted, then has no second error for it.
    for input in shown.sig.inputs.iter_mut() {
        if let FnArg::Typed(t) = input
            && state_without_type(&t.ty)
            && let Type::Path(p) = &mut *t.ty
            && let Some(last) = p.path.segments.last_mut()
        {
            let e = syn::Error::new_spanned(
                &last.ident,
                "`State` needs the state's type: `State<T>`, such as `State<Arc<Db>>`",
            )
            .to_compile_error();
            last.arguments = syn::PathArguments::AngleBracketed(syn::parse_quote!(<#e>));
            failed = true;
        }
    }
    for lit in args.events.iter().flatten() {
        // A name is checked against the bundled events when the parameter
        // type is one of theirs by name; the events of other types (models
        // generated for an org, with events of their own) are checked by
        // the compiler against the type's own list (`expansion`).
        let bundled = types.first().is_none_or(|ty| bundled_type(ty));
        let known = if bundled {
            check_event_name(lit)
        } else {
            Ok(())
        };
        let fits = known.and_then(|()| {
            types
                .first()
                .map_or(Ok(()), |event| check_event_fits(lit, event))
        });
        if let Err(e) = fits {
            combine(&mut errors, e);
        }
    }
    if errors.is_some() || failed {
        let errors = errors.map(|e| e.to_compile_error());
        return Err(quote!(#shown #errors));
    }
    Ok(args)
}

/// Why a handler cannot be generic, from what its generics are for.
fn generics_message(generics: &syn::Generics, types: &[&Type]) -> &'static str {
    let mut lifetimes_only = true;
    let mut lifetimes = false;
    let mut in_state = false;
    let mut in_event = false;
    for param in &generics.params {
        let ident = match param {
            syn::GenericParam::Lifetime(_) => {
                lifetimes = true;
                continue;
            }
            syn::GenericParam::Type(t) => &t.ident,
            syn::GenericParam::Const(c) => &c.ident,
        };
        lifetimes_only = false;
        let used = |ty: &Type| mentions(quote!(#ty), ident);
        in_event |= types.first().is_some_and(|t| used(t));
        in_state |= types.get(1).is_some_and(|t| used(t));
    }
    if generics.params.is_empty() {
        "a webhook handler cannot have a `where` clause: it has no generic parameters"
    } else if lifetimes_only {
        "a webhook handler cannot have lifetime parameters: it owns its event and state"
    } else if in_state {
        "a webhook handler cannot have generic parameters: name the state's type: `State<Db>`"
    } else if in_event {
        "a webhook handler cannot have generic parameters: name the event type: `CustomerUpdate`"
    } else if lifetimes {
        "a webhook handler cannot have generic or lifetime parameters"
    } else {
        "a webhook handler cannot have generic parameters"
    }
}

/// Whether `tokens` has the identifier `ident`, at any depth.
fn mentions(tokens: TokenStream, ident: &syn::Ident) -> bool {
    tokens.into_iter().any(|t| match t {
        TokenTree::Ident(i) => i == *ident,
        TokenTree::Group(g) => mentions(g.stream(), ident),
        _ => false,
    })
}

/// An `impl Trait` in `ty`, at any depth.
fn find_impl_trait(ty: &Type) -> Option<&syn::TypeImplTrait> {
    match ty {
        Type::ImplTrait(i) => Some(i),
        Type::Array(a) => find_impl_trait(&a.elem),
        Type::Group(g) => find_impl_trait(&g.elem),
        Type::Paren(p) => find_impl_trait(&p.elem),
        Type::Ptr(p) => find_impl_trait(&p.elem),
        Type::Reference(r) => find_impl_trait(&r.elem),
        Type::Slice(s) => find_impl_trait(&s.elem),
        Type::Tuple(t) => t.elems.iter().find_map(find_impl_trait),
        Type::Path(p) => p.path.segments.iter().find_map(|s| match &s.arguments {
            syn::PathArguments::AngleBracketed(a) => a.args.iter().find_map(|a| match a {
                syn::GenericArgument::Type(t) => find_impl_trait(t),
                _ => None,
            }),
            _ => None,
        }),
        _ => None,
    }
}

/// The error of a `Result<(), Box<dyn Error>>`, when it is not `Send + Sync`.
fn unshared_box_error(ty: &Type) -> Option<&Type> {
    let error = last_type_argument(ty, "Result", 2)?;
    let Some(Type::TraitObject(object)) = last_type_argument(error, "Box", 1) else {
        return None;
    };
    let traits: Vec<&syn::Path> = object
        .bounds
        .iter()
        .filter_map(|b| match b {
            syn::TypeParamBound::Trait(t) => Some(&t.path),
            _ => None,
        })
        .collect();
    let has = |name: &str, module: &str| {
        traits.iter().any(|path| {
            let segments: Vec<&syn::Ident> = path.segments.iter().map(|s| &s.ident).collect();
            match segments[..] {
                [.., m, last] => last == name && m == module,
                [last] => last == name,
                [] => false,
            }
        })
    };
    let error_trait = has("Error", "error");
    (error_trait && !(has("Send", "marker") && has("Sync", "marker"))).then_some(error)
}

/// A state type that is not `Send + Sync` for sure (`Rc`, `RefCell` or
/// `Cell` of the standard library, maybe in an `Arc` or a `Box`), and why.
fn unshared_state(ty: &Type) -> Option<(&Type, &'static str)> {
    let Type::Path(p) = ty else { return None };
    let segments: Vec<&syn::PathSegment> = p.path.segments.iter().collect();
    let last = segments.last()?;
    let module = segments.len().checked_sub(2).map(|i| &segments[i].ident);
    let std = |m: &str| module.is_none_or(|i| i == m);
    let generic = matches!(last.arguments, syn::PathArguments::AngleBracketed(_));
    if last.ident == "Arc" && std("sync") || last.ident == "Box" && std("boxed") {
        return last_type_argument(ty, &last.ident.to_string(), 1).and_then(unshared_state);
    }
    let msg = if last.ident == "Rc" && generic && std("rc") {
        "the state is shared between threads, so its type must be `Send + Sync + 'static`: `Rc` is not, `Arc` is"
    } else if (last.ident == "RefCell" || last.ident == "Cell") && generic && std("cell") {
        "the state is shared between threads, so its type must be `Send + Sync + 'static`: a `RefCell` or `Cell` is not, a `Mutex` or an atomic is"
    } else {
        return None;
    };
    Some((ty, msg))
}

/// The last of the `n` type arguments of `ty`, a path ending in `name`.
fn last_type_argument<'a>(ty: &'a Type, name: &str, n: usize) -> Option<&'a Type> {
    let Type::Path(p) = ty else { return None };
    let last = p.path.segments.last()?;
    let syn::PathArguments::AngleBracketed(args) = &last.arguments else {
        return None;
    };
    let types: Vec<&Type> = args
        .args
        .iter()
        .filter_map(|a| match a {
            syn::GenericArgument::Type(t) => Some(t),
            _ => None,
        })
        .collect();
    (last.ident == name && types.len() == n).then(|| types[n - 1])
}

fn first_token_span(item: &TokenStream) -> Span {
    item.clone()
        .into_iter()
        .find(|t| !matches!(t, proc_macro2::TokenTree::Punct(p) if p.as_char() == '#'))
        .map_or_else(Span::call_site, |t| t.span())
}

/// Whether `ty` is a path ending in `State`, with its type or not.
fn names_state(ty: &Type) -> bool {
    matches!(ty, Type::Path(p) if p.qself.is_none() && p.path.segments.last().is_some_and(|s| s.ident == "State"))
}

/// `State`, or `State<>`, without the state's type.
fn state_without_type(ty: &Type) -> bool {
    names_state(ty) && state_inner(ty).is_none()
}

/// The documented event name `name` was probably meant to be: the same
/// resource and action up to case, a missing `kustomer.` prefix, a typo of
/// one or two letters, or a shortened resource (`convo`). The rule the
/// runtime's app-definition check follows too.
fn nearest_event(name: &str) -> Option<&'static str> {
    let lower = name.trim().to_ascii_lowercase();
    let mut parts: Vec<&str> = lower.split('.').collect();
    if parts.first() == Some(&"kustomer") {
        parts.remove(0);
    }
    let [resource, action] = parts[..] else {
        return None;
    };
    // A typo, or a shortening (`convo`); not a longer word that starts
    // like a known one (`teammember`), which may be an event of its own.
    let close = |known: &str, typed: &str| {
        let common = known
            .chars()
            .zip(typed.chars())
            .take_while(|(x, y)| x == y)
            .count();
        strsim::levenshtein(known, typed) <= 2 || (common >= 4 && typed.len() <= known.len())
    };
    // The closest of the close ones (`tag` is close to `team` too, but
    // closer to `tag`).
    KNOWN_EVENTS
        .iter()
        .copied()
        .filter_map(|known| {
            let mut k = known.split('.').skip(1);
            match (k.next(), k.next()) {
                (Some(r), Some(a)) if close(r, resource) && close(a, action) => Some((
                    strsim::levenshtein(r, resource) + strsim::levenshtein(a, action),
                    known,
                )),
                _ => None,
            }
        })
        .min_by_key(|(distance, _)| *distance)
        .map(|(_, known)| known)
}

fn check_event_name(lit: &LitStr) -> syn::Result<()> {
    let name = lit.value();
    if KNOWN_EVENTS.contains(&name.as_str()) {
        return Ok(());
    }
    let mut msg = format!("unknown Kustomer event `{name}`");
    if let Some(k) = nearest_event(&name) {
        msg.push_str(&format!("; did you mean `{k}`?"));
    } else if name.contains('*') {
        msg.push_str("; event names are exact, with no wildcards: to take every event of a resource, take its envelope (`CustomerEvent`, say) without `event = …`");
    } else {
        msg.push_str("; events without a generated type, unknown names included, all go to the one handler taking `OtherEvent` (without `event = …`)");
    }
    Err(syn::Error::new_spanned(lit, msg))
}

/// `CustomerUpdate` for `kustomer.customer.update`: the name of an event's
/// own type, in the bundled models and in generated ones.
fn event_type_name(event: &str) -> String {
    event
        .split('.')
        .skip(1)
        .map(|part| {
            let mut chars = part.chars();
            chars.next().map_or_else(String::new, |c| {
                c.to_ascii_uppercase().to_string() + chars.as_str()
            })
        })
        .collect()
}

/// `CustomerEvent` for `kustomer.customer.update`: the name of the envelope
/// of the event's resource.
fn envelope_name(event: &str) -> String {
    let resource = event.split('.').nth(1).unwrap_or_default();
    event_type_name(&format!("kustomer.{resource}.event"))
}

/// Checks that the parameter type holds the named event, when the type's
/// name says which events it holds; other types are checked by the compiler
/// (`expansion`).
fn check_event_fits(lit: &LitStr, ty: &Type) -> syn::Result<()> {
    let Some(ident) = type_ident(ty) else {
        return Ok(());
    };
    let name = lit.value();
    let (own, envelope) = (event_type_name(&name), envelope_name(&name));
    // What to take for `name`, as far as this macro can know: the bundled
    // models' types are known; models of one's own (a type written by
    // another path) may or may not have a type for an event, so they are
    // only named as what to look for.
    let bundled = bundled_type(ty);
    let untyped = bundled && UNTYPED_EVENTS.contains(&name.as_str());
    let typed = bundled && KNOWN_EVENTS.contains(&name.as_str()) && !untyped;
    let take = if untyped {
        format!(
            "`{name}` has no type in the bundled models: an `OtherEvent` handler (which names no event) takes it, or, if your own models have them, `{own}` or the envelope `{envelope}`"
        )
    } else if bundled {
        format!(
            "for `{name}` take `{own}`, or the envelope `{envelope}` (every event of its resource)"
        )
    } else {
        format!(
            "for `{name}` take its own type (`{own}`) or its resource's envelope (`{envelope}`) if your models have them, and otherwise an `OtherEvent` handler (which names no event)"
        )
    };
    let msg = if ident == "OtherEvent" {
        if untyped {
            format!(
                "an `OtherEvent` handler takes every event without a generated type, `{name}` among them, and names none: remove `event = \"{name}\"`"
            )
        } else if typed {
            format!(
                "an `OtherEvent` handler takes the events without a generated type, and `{name}` has one: take `{own}`, or the envelope `{envelope}`"
            )
        } else if bundled {
            // Not a known event: said by `check_event_name`.
            return Ok(());
        } else {
            format!(
                "an `OtherEvent` handler takes every event its models have no type for, and names none: remove `event = \"{name}\"` (or, if your models have a type for it, take that: `{own}`)"
            )
        }
    } else if let Some(k) = KNOWN_EVENTS.iter().find(|k| ident == event_type_name(k)) {
        if *k == name {
            return Ok(());
        }
        format!("`{ident}` is the event `{k}` only: {take}")
    } else if let Some(k) = KNOWN_EVENTS.iter().find(|k| ident == envelope_name(k)) {
        if envelope_name(k) == envelope {
            return Ok(());
        }
        format!("`{ident}` holds the events of another resource than `{name}`: {take}")
    } else {
        return Ok(());
    };
    Err(syn::Error::new_spanned(lit, msg))
}

/// Whether the parameter type is one of the bundled models' by how it is
/// written: named as one (see [`named_by_convention`]), and either by its
/// name alone or by a path from `kustomer_webhooks`. A type written by
/// another path (`kustomer::CustomerEvent`, models generated for an org)
/// may hold events of its own: the compiler checks those (`expansion`).
fn bundled_type(ty: &Type) -> bool {
    let Type::Path(p) = ty else {
        return false;
    };
    let segments = &p.path.segments;
    named_by_convention(ty)
        && (segments.len() == 1
            || segments
                .first()
                .is_some_and(|s| s.ident == "kustomer_webhooks"))
}

/// Whether the parameter type's name says which events it holds: an event's
/// own type, a resource's envelope, or `OtherEvent`.
fn named_by_convention(ty: &Type) -> bool {
    type_ident(ty).is_some_and(|ident| {
        ident == "OtherEvent"
            || KNOWN_EVENTS
                .iter()
                .any(|k| ident == event_type_name(k) || ident == envelope_name(k))
    })
}

/// The name a path type ends in.
fn type_ident(ty: &Type) -> Option<String> {
    match ty {
        Type::Path(p) if p.qself.is_none() => p.path.segments.last().map(|s| s.ident.to_string()),
        _ => None,
    }
}

/// `ty` as written, for messages: `kustomer::CustomerUpdate`.
fn type_text(ty: &Type) -> String {
    let text = quote!(#ty).to_string();
    let mut out = String::with_capacity(text.len());
    for (i, part) in text.split(' ').enumerate() {
        let prev = out.chars().last();
        let joined = matches!(part, "::" | "<" | ">" | "," | ")" | "]")
            || matches!(prev, Some(':' | '<' | '(' | '[' | '&'));
        if i > 0 && !joined {
            out.push(' ');
        }
        out.push_str(part);
    }
    out
}

/// `_` for a type the compiler infers from the function, spanning the type
/// the user wrote (an unmet requirement is reported there) without naming it
/// a second time (an unknown name would be reported twice).
fn inferred(ty: &Type) -> TokenStream {
    let trees: Vec<TokenTree> = quote!(#ty).into_iter().collect();
    let (first, last) = match (trees.first(), trees.last()) {
        (Some(f), Some(l)) => (open_span(f), close_span(l)),
        _ => (Span::call_site(), Span::call_site()),
    };
    let alias = syn::Ident::new("__KustomerWebhookInferred", first);
    let close = quote_spanned!(last=> >);
    quote_spanned!(first=> #alias < _ #close)
}

fn open_span(t: &TokenTree) -> Span {
    match t {
        TokenTree::Group(g) => g.span_open(),
        t => t.span(),
    }
}

fn close_span(t: &TokenTree) -> Span {
    match t {
        TokenTree::Group(g) => g.span_close(),
        t => t.span(),
    }
}

fn expansion(func: &ItemFn, args: &Args) -> TokenStream {
    let ident = &func.sig.ident;
    let krate = runtime_path(args.krate.as_ref(), Span::call_site());
    let rt = quote!(#krate::__private);
    let types: Vec<&Type> = func
        .sig
        .inputs
        .iter()
        .filter_map(|a| match a {
            FnArg::Typed(t) => Some(&*t.ty),
            FnArg::Receiver(_) => None,
        })
        .collect();
    let event_ty = types[0];
    // The types are inferred from the function, each `_` on the span of the
    // user's type.
    let event = inferred(event_ty);
    let result = match &func.sig.output {
        ReturnType::Default => quote!(()),
        ReturnType::Type(_, ty) => inferred(ty),
    };
    // `State<T>` by whatever name the handler gives it: its `T` is the
    // compiler's to find.
    let state = types.get(1).map(|t| inferred(t));
    let ctor = match (func.sig.asyncness.is_some(), &state) {
        (true, None) => quote!(async_handler::<#event, #result, _, _>),
        (true, Some(t)) => quote!(async_handler_with_state::<#event, #t, #result, _, _>),
        (false, None) => quote!(blocking_handler::<#event, #result, _>),
        (false, Some(t)) => quote!(blocking_handler_with_state::<#event, #t, #result, _>),
    };
    // Named events must be ones the parameter type holds: checked here for
    // a type whose name does not say which events it holds.
    let names: Vec<&LitStr> = args.events.iter().flatten().collect();
    let checked = if bundled_type(event_ty) {
        &[][..]
    } else {
        &names[..]
    };
    let catch_all = type_ident(event_ty).is_some_and(|ident| ident == "AnyEvent");
    let name_checks = checked.iter().map(|lit| {
        // A name that is no documented event but close to one: a typo, most
        // likely, whatever the type (shown only when the check fails).
        let typo = Some(lit.value())
            .filter(|name| !KNOWN_EVENTS.contains(&name.as_str()))
            .and_then(|name| nearest_event(&name));
        let msg = if let Some(known) = typo {
            format!(
                "`{}` is not an event of `{}`; did you mean `{known}`?",
                lit.value(),
                type_text(event_ty),
            )
        } else if catch_all {
            format!(
                "`{}` has no generated type in the set of `{}`: a handler of the whole set that names its events takes events with a generated type; remove the names for a catch-all (every event no other handler takes, this one among them), or take `OtherEvent`",
                lit.value(),
                type_text(event_ty),
            )
        } else {
            format!(
                "`{}` is not an event of `{}`, the handler's parameter type: take a type that holds it (the event's own type, or its resource's envelope)",
                lit.value(),
                type_text(event_ty),
            )
        };
        let span = lit.span();
        // The message is the assertion's format string: braces in the
        // event name are written as such.
        let msg = msg.replace('{', "{{").replace('}', "}}");
        quote_spanned! {span=>
            const _: () = ::core::assert!(#rt::lists(__kustomer_webhook_events(&#ident), #lit), #msg);
        }
    });
    let events_of = match (checked.is_empty(), state.is_some()) {
        (true, _) => quote!(),
        (false, false) => quote! {
            const fn __kustomer_webhook_events<E: #krate::FromEvent, R>(
                _: &impl ::core::ops::Fn(E) -> R,
            ) -> &'static [&'static ::core::primitive::str] {
                E::EVENTS
            }
        },
        (false, true) => quote! {
            const fn __kustomer_webhook_events<E: #krate::FromEvent, P, R>(
                _: &impl ::core::ops::Fn(E, P) -> R,
            ) -> &'static [&'static ::core::primitive::str] {
                E::EVENTS
            }
        },
    };
    let only = if names.is_empty() {
        quote!(::core::option::Option::None)
    } else {
        quote!(::core::option::Option::Some(&[#(#names),*]))
    };
    // `r#type` is registered as `type`, as Rust names it elsewhere.
    let name = syn::ext::IdentExt::unraw(ident).to_string();
    let span = ident.span();
    let at_ident = runtime_path(args.krate.as_ref(), span);
    let make = quote_spanned! {span=>
        #at_ident::__private::#ctor(#ident, ::core::concat!(::core::module_path!(), "::", #name), #only)
    };
    // The event (and state) come by value because the dispatcher hands them
    // over: clippy's advice to take a reference cannot be followed here.
    let mut func = func.clone();
    // First, so that the user's own `expect`, say, still has the last word.
    func.attrs.insert(
        0,
        syn::parse_quote!(#[allow(clippy::needless_pass_by_value)]),
    );
    quote! {
        #func

        #[doc(hidden)]
        // The handler may be `#[deprecated]`: registering it is no use of it.
        #[allow(deprecated)]
        const _: () = {
            type __KustomerWebhookInferred<T> = T;
            #events_of
            #(#name_checks)*
            fn __kustomer_webhook_make() -> #rt::Registered {
                #make
            }
            #rt::inventory::submit! {
                #rt::Registration { make: __kustomer_webhook_make }
            }
        };
    }
}

/// `T` in a `State<T>` parameter type.
fn state_inner(ty: &Type) -> Option<&Type> {
    let Type::Path(p) = ty else { return None };
    let last = p.path.segments.last()?;
    let syn::PathArguments::AngleBracketed(args) = &last.arguments else {
        return None;
    };
    match args.args.first()? {
        syn::GenericArgument::Type(t) => Some(t),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pretty(tokens: TokenStream) -> String {
        match syn::parse2::<syn::File>(tokens.clone()) {
            Ok(file) => prettyplease::unparse(&file),
            Err(_) => tokens.to_string(),
        }
    }

    #[test]
    fn expansion_of_an_async_handler() {
        let out = expand(
            quote!(),
            quote! {
                async fn on_update(event: CustomerUpdate) -> Result<(), MyError> { Ok(()) }
            },
        );
        insta::assert_snapshot!(pretty(out));
    }

    #[test]
    fn the_runtime_is_reached_by_the_path_given() {
        let out = pretty(expand(
            quote!(crate = "my_facade::kw", event = "kustomer.team.create"),
            quote! {
                async fn on_team(event: kustomer::Teams) {}
            },
        ));
        assert!(!out.contains("kustomer_webhooks"), "{out}");
        assert!(
            out.contains("my_facade::kw::__private::async_handler"),
            "{out}"
        );
        assert!(out.contains("E: my_facade::kw::FromEvent"), "{out}");
        let model = crate::model::expand(
            quote!(crate = "my_facade::kw"),
            quote! {
                pub struct Location { pub extra: Extra }
            },
        )
        .to_string();
        assert!(!model.contains("kustomer_webhooks"), "{model}");
        assert!(model.contains("my_facade :: kw :: __model !"), "{model}");
    }

    #[test]
    fn expansion_of_a_blocking_handler_with_state_and_named_events() {
        let out = expand(
            quote!(events = ["kustomer.customer.create", "kustomer.customer.update"]),
            quote! {
                fn on_customer(event: CustomerEvent, app: State<Arc<App>>) {}
            },
        );
        insta::assert_snapshot!(pretty(out));
    }

    #[test]
    fn expansion_checks_named_events_of_a_type_named_otherwise() {
        let out = expand(
            quote!(event = "kustomer.team.create"),
            quote! {
                async fn on_team(event: kustomer::Teams, app: State<Db>) {}
            },
        );
        insta::assert_snapshot!(pretty(out));
    }

    /// Tags have no bundled type, but models generated from tag samples
    /// have a `TagEvent`, which takes them; a bundled envelope of another
    /// resource does not, and is told an `OtherEvent` handler does.
    #[test]
    fn a_tag_event_fits_a_tag_envelope_and_not_another() {
        for events in [
            quote!(event = "kustomer.tag.create"),
            quote!(events = ["kustomer.tag.create", "kustomer.tag.update"]),
        ] {
            let out = expand(
                events,
                quote!(
                    async fn on_tag(event: TagEvent) {}
                ),
            )
            .to_string();
            assert!(!out.contains("compile_error"), "{out}");
        }
        let out = expand(
            quote!(event = "kustomer.tag.create"),
            quote!(
                async fn on_tag(event: CustomerEvent) {}
            ),
        )
        .to_string();
        assert!(
            out.contains("compile_error") && out.contains("has no type in the bundled models"),
            "{out}"
        );
    }

    #[test]
    fn the_events_of_an_orgs_own_models_are_checked_by_their_type_not_the_bundled_list() {
        // A custom object's event, which only an org's generated models have.
        let out = expand(
            quote!(event = "kustomer.kobject.order.update"),
            quote! {
                async fn on_order(event: kustomer::KobjectOrderEvent) {}
            },
        )
        .to_string();
        assert!(!out.contains("compile_error"), "{out}");
        assert!(
            out.contains("lists"),
            "checked against the type's events: {out}"
        );
        assert!(out.contains("\"kustomer.kobject.order.update\""), "{out}");
        // An org's envelope named like a bundled one, written by its path,
        // with an event the bundled models do not have.
        let out = expand(
            quote!(event = "kustomer.customer.delete"),
            quote! {
                async fn on_delete(event: kustomer::CustomerEvent) {}
            },
        )
        .to_string();
        assert!(!out.contains("compile_error"), "{out}");
        assert!(out.contains("\"kustomer.customer.delete\""), "{out}");
        assert!(out.contains("lists"), "{out}");
        // A bundled type still gets the bundled list, and a near miss named.
        let out = expand(
            quote!(event = "kustomer.custmer.update"),
            quote! {
                async fn on_update(event: CustomerEvent) {}
            },
        )
        .to_string();
        assert!(out.contains("compile_error"), "{out}");
        assert!(out.contains("did you mean"), "{out}");
        // A name listed twice: an error on the second, not a dispatcher
        // that fails to build at start.
        let out = expand(
            quote!(events = ["kustomer.customer.create", "kustomer.customer.create"]),
            quote! {
                async fn on_customer(event: CustomerEvent) {}
            },
        )
        .to_string();
        assert!(
            out.contains("`kustomer.customer.create` is listed twice: give each event once"),
            "{out}"
        );
    }

    #[test]
    fn the_name_of_a_parameter_type_says_which_events_it_holds() {
        assert_eq!(
            event_type_name("kustomer.customer.update"),
            "CustomerUpdate"
        );
        assert_eq!(envelope_name("kustomer.customer.update"), "CustomerEvent");
        let fits =
            |name: &str, ty: Type| check_event_fits(&LitStr::new(name, Span::call_site()), &ty);
        assert!(
            fits(
                "kustomer.customer.update",
                syn::parse_quote!(CustomerUpdate)
            )
            .is_ok()
        );
        assert!(
            fits(
                "kustomer.customer.create",
                syn::parse_quote!(kustomer::CustomerEvent)
            )
            .is_ok()
        );
        assert!(fits("kustomer.tag.create", syn::parse_quote!(Tags)).is_ok());
        assert!(
            fits(
                "kustomer.customer.create",
                syn::parse_quote!(CustomerUpdate)
            )
            .is_err()
        );
        assert!(fits("kustomer.team.create", syn::parse_quote!(CustomerEvent)).is_err());
        assert!(fits("kustomer.tag.create", syn::parse_quote!(OtherEvent)).is_err());
    }

    #[test]
    fn boxed_errors_that_are_not_send_and_sync() {
        let unshared = |ty: TokenStream| unshared_box_error(&syn::parse2(ty).unwrap()).is_some();
        assert!(unshared(quote!(Result<(), Box<dyn std::error::Error>>)));
        assert!(unshared(quote!(Result<(), Box<dyn Error + Send>>)));
        assert!(!unshared(quote!(Result<(), Box<dyn Error + Send + Sync>>)));
        assert!(!unshared(
            quote!(Result<(), Box<dyn std::error::Error + std::marker::Send + Sync + 'static>>)
        ));
        assert!(!unshared(quote!(Result<(), Box<dyn my::Error>>)));
        assert!(!unshared(quote!(Result<(), MyError>)));
    }

    #[test]
    fn state_types_that_are_not_send_and_sync() {
        for ty in [
            quote!(Rc<Db>),
            quote!(std::rc::Rc<Db>),
            quote!(Arc<RefCell<Db>>),
            quote!(Box<Cell<u8>>),
        ] {
            assert!(
                unshared_state(&syn::parse2(ty.clone()).unwrap()).is_some(),
                "{ty}"
            );
        }
        for ty in [
            quote!(Arc<Db>),
            quote!(Arc<Mutex<RefCell<Db>>>),
            quote!(my::Rc<Db>),
            quote!(Cell),
        ] {
            assert!(
                unshared_state(&syn::parse2(ty.clone()).unwrap()).is_none(),
                "{ty}"
            );
        }
    }

    #[test]
    fn types_in_messages_read_as_written() {
        let ty: Type = syn::parse_quote!(kustomer::Envelope<Vec<u8>, &'static str>);
        assert_eq!(type_text(&ty), "kustomer::Envelope<Vec<u8>, &'static str>");
    }

    #[test]
    fn near_misses_are_named_and_braces_stay_text() {
        // White space before the name, as after it: the name meant.
        let out = expand(
            quote!(event = " kustomer.customer.create"),
            quote!(
                async fn f(e: CustomerEvent) {}
            ),
        )
        .to_string();
        assert!(
            out.contains("did you mean `kustomer.customer.create`?"),
            "{out}"
        );
        // A wildcard: the envelope takes every event of its resource.
        let out = expand(
            quote!(event = "kustomer.customer.*"),
            quote!(
                async fn f(e: CustomerEvent) {}
            ),
        )
        .to_string();
        assert!(out.contains("no wildcards"), "{out}");
        // A list given to `event`: `events` named.
        let out = expand(
            quote!(event = ["kustomer.customer.create", "kustomer.customer.update"]),
            quote!(
                async fn f(e: CustomerEvent) {}
            ),
        )
        .to_string();
        assert!(out.contains("for several, write `events ="), "{out}");
        // Models of one's own, whose events the compiler checks: a brace in
        // the name is text in the assertion's message, not a format
        // argument.
        let out = expand(
            quote!(event = "kustomer.customer.update}"),
            quote!(
                async fn f(e: org::CustomerEvent) {}
            ),
        )
        .to_string();
        assert!(out.contains("update}}"), "{out}");
        assert!(!out.contains("update}`"), "{out}");
    }

    #[test]
    fn errors_keep_the_function() {
        let out = expand(
            quote!(event = "kustomer.custmer.update"),
            quote!(
                async fn f(e: CustomerUpdate) {}
            ),
        );
        let text = out.to_string();
        assert!(text.contains("async fn f"), "{text}");
        assert!(
            text.contains("did you mean `kustomer.customer.update`?"),
            "{text}"
        );
    }
}
