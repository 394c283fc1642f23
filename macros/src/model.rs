//! `#[model]`: reads the struct, checks it, and hands the fields to the
//! runtime's `__model!` macro, which holds the logic.

use proc_macro2::TokenStream;
use quote::{ToTokens, quote};
use syn::{
    Attribute, Fields, GenericArgument, ItemStruct, LitStr, PathArguments, Type, parse2,
    spanned::Spanned,
};

pub fn expand(args: TokenStream, input: TokenStream) -> TokenStream {
    match try_expand(args, input.clone()) {
        Ok(out) => out,
        Err(e) => {
            let err = e.to_compile_error();
            quote!(#input #err)
        }
    }
}

enum Kind {
    Opt,
    Null,
    Any,
    Req,
}

fn try_expand(args: TokenStream, input: TokenStream) -> syn::Result<TokenStream> {
    if !args.is_empty() {
        return Err(syn::Error::new_spanned(args, "#[model] takes no arguments"));
    }
    let item: ItemStruct = parse2(input)?;
    if !item.generics.params.is_empty() {
        return Err(syn::Error::new_spanned(
            &item.generics,
            "a model cannot be generic",
        ));
    }
    let Fields::Named(fields) = &item.fields else {
        return Err(syn::Error::new(
            item.fields.span(),
            "a model needs named fields",
        ));
    };
    let mut lines = Vec::new();
    let mut errors: Option<syn::Error> = None;
    let mut index = 0u32;
    let mut extra_ty = None;
    for field in &fields.named {
        let Some(ident) = &field.ident else { continue };
        if ident == "extra" {
            extra_ty = Some(&field.ty);
            continue;
        }
        match field_line(field.attrs.as_slice(), &field.ty, ident, index) {
            Ok(line) => {
                lines.push(line);
                index += 1;
            }
            Err(e) => match &mut errors {
                Some(all) => all.combine(e),
                None => errors = Some(e),
            },
        }
    }
    let Some(extra_ty) = extra_ty else {
        return Err(syn::Error::new_spanned(
            &item.ident,
            "a model needs `pub extra: Extra` for the keys it does not know",
        ));
    };
    if let Some(e) = errors {
        return Err(e);
    }
    let attrs = &item.attrs;
    let vis = &item.vis;
    let name = &item.ident;
    if !matches!(vis, syn::Visibility::Public(_)) {
        return Err(syn::Error::new_spanned(
            &item.ident,
            "a model struct must be `pub`",
        ));
    }
    Ok(quote! {
        ::kustomer_webhooks::__model! {
            #(#attrs)*
            pub struct #name {
                #(#lines)*
            }
        }
        // `extra` is declared by the macro; the struct as written must agree.
        const _: fn(&#name) -> &#extra_ty = |m| &m.extra;
    })
}

fn field_line(
    attrs: &[Attribute],
    ty: &Type,
    ident: &syn::Ident,
    index: u32,
) -> syn::Result<TokenStream> {
    let mut key: Option<LitStr> = None;
    let mut nullable = false;
    let mut any = false;
    let mut docs = Vec::new();
    for attr in attrs {
        if attr.path().is_ident("json") {
            attr.parse_args_with(|input: syn::parse::ParseStream| {
                key = Some(input.parse()?);
                while input.parse::<Option<syn::Token![,]>>()?.is_some() {
                    let flag: syn::Ident = input.parse()?;
                    if flag == "nullable" {
                        nullable = true;
                    } else if flag == "any" {
                        any = true;
                    } else {
                        return Err(syn::Error::new_spanned(
                            flag,
                            "expected `nullable` or `any`",
                        ));
                    }
                }
                Ok(())
            })?;
        } else {
            docs.push(attr.to_token_stream());
        }
    }
    let Some(key) = key else {
        return Err(syn::Error::new_spanned(
            ident,
            "every model field but `extra` needs #[json(\"key\")]",
        ));
    };
    let inner = option_inner(ty);
    let (kind, ty) = match (inner, nullable, any) {
        (Some(_), _, true) => (Kind::Any, ty.clone()),
        (Some(t), true, false) => (Kind::Null, t.clone()),
        (Some(t), false, false) => (Kind::Opt, t.clone()),
        (None, false, false) => (Kind::Req, ty.clone()),
        (None, _, _) => {
            return Err(syn::Error::new_spanned(
                ty,
                "a `nullable` or `any` field must be an `Option<…>`",
            ));
        }
    };
    let kind = match kind {
        Kind::Opt => quote!(opt),
        Kind::Null => quote!(null),
        Kind::Any => quote!(any),
        Kind::Req => quote!(req),
    };
    let index = proc_macro2::Literal::u32_unsuffixed(index);
    Ok(quote! { #(#docs)* #kind #index #key => #ident: #ty, })
}

/// `T` when `ty` is `Option<T>`.
fn option_inner(ty: &Type) -> Option<&Type> {
    let Type::Path(p) = ty else { return None };
    let last = p.path.segments.last()?;
    if last.ident != "Option" {
        return None;
    }
    let PathArguments::AngleBracketed(args) = &last.arguments else {
        return None;
    };
    match args.args.first()? {
        GenericArgument::Type(t) => Some(t),
        _ => None,
    }
}
