//! The declarative macro the generated models are written with.
//!
//! Generated code stays short and reviewable (one line per field), and the
//! logic it expands to is written, and tested, once.

/// Declares one model struct and its tolerant reading, lossless
/// `Serialize` and drift walk.
///
/// Each field line is `KIND INDEX "jsonKey" => VIS rust_name: Type,` where KIND is
/// - `opt`: `Option<Type>`; `null` or another JSON type is drift;
/// - `null`: `Option<Type>`, and `null` is expected (written back as `null`);
/// - `any`: `Option<serde_json::Value>` (as `Type`, the `Value` under any name), any JSON
///   at all (no type evidence);
/// - `req`: `Type` itself (a struct); absent or drifted leaves the default,
///   and it is not written back.
///
/// `INDEX` numbers the fields from 0 (it indexes the null/absent marks).
#[doc(hidden)]
#[macro_export]
macro_rules! __model {
    (
        $(#[$meta:meta])*
        pub struct $name:ident {
            $(
                $(#[$fmeta:meta])*
                $kind:ident $idx:literal $json:literal => $fvis:vis $field:ident : $ty:ty,
            )*
        }
    ) => {
        $(#[$meta])*
        #[derive(Clone, Default)]
        pub struct $name {
            $(
                $(#[$fmeta])*
                $fvis $field: $crate::__model!(@type $kind $ty),
            )*
            /// Keys the model does not know, and values whose JSON type differs
            /// from the model's, exactly as received.
            pub extra: $crate::Extra,
            #[doc(hidden)]
            pub __marks: $crate::__private::Marks,
        }

        // The fields and `extra`, as `Debug` shows them: whether a key
        // was absent or null (which the marks keep, for writing the payload
        // back) is not compared, so that a value built by hand equals the
        // one parsed from a payload with the same values.
        // A field may be `#[deprecated]`: reading it here is no use of it.
        #[allow(deprecated)]
        impl ::core::cmp::PartialEq for $name {
            fn eq(&self, other: &Self) -> ::core::primitive::bool {
                $( self.$field == other.$field && )* self.extra == other.extra
            }
        }

        // The fields and `extra`; which keys were present is internal.
        // A field may be `#[deprecated]`: reading it here is no use of it.
        #[allow(deprecated)]
        impl ::core::fmt::Debug for $name {
            fn fmt(&self, f: &mut ::core::fmt::Formatter<'_>) -> ::core::fmt::Result {
                f.debug_struct(::core::stringify!($name))
                    $( .field($crate::__private::field_name(::core::stringify!($field)), &self.$field) )*
                    .field("extra", &self.extra)
                    .finish()
            }
        }

        // A field may be `#[deprecated]`: reading it here is no use of it.
        #[allow(deprecated)]
        impl $name {
            /// Whether the payload had `key` here (with any value, even one
            /// of another type than the model's).
            pub fn has_key(&self, key: &::core::primitive::str) -> ::core::primitive::bool {
                let typed = match key {
                    $( $json => $crate::__model!(@present $kind self $field $idx), )*
                    _ => false,
                };
                typed || self.extra.contains_key(key)
            }
        }

        // A field may be `#[deprecated]`: reading it here is no use of it.
        #[allow(deprecated)]
        impl $crate::__private::Serialize for $name {
            fn serialize<S: $crate::__private::Serializer>(
                &self,
                s: S,
            ) -> ::core::result::Result<S::Ok, S::Error> {
                use $crate::__private::SerializeMap as _;
                let mut m = s.serialize_map(::core::option::Option::None)?;
                $( $crate::__model!(@write $kind m self $field $idx $json $ty); )*
                $crate::__private::write_extra(&mut m, &self.extra, |key| match key {
                    $( $json => $crate::__model!(@writes $kind self $field $idx $ty), )*
                    _ => false,
                })?;
                m.end()
            }
        }

        // A field may be `#[deprecated]`: reading it here is no use of it.
        #[allow(deprecated)]
        impl $crate::__private::Model for $name {
            const EXPECTED: &'static ::core::primitive::str = "object";

            fn read_option(
                r: &mut $crate::__private::Reader<'_>,
                slot: &mut ::core::option::Option<Self>,
            ) -> ::core::result::Result<$crate::__private::Misfit, $crate::__private::ReadError> {
                $crate::__private::read_option_in_place(r, slot)
            }

            fn read_in_place(
                r: &mut $crate::__private::Reader<'_>,
                out: &mut Self,
            ) -> ::core::result::Result<$crate::__private::Misfit, $crate::__private::ReadError> {
                if !r.begin_object()? {
                    return $crate::__private::misfit(r);
                }
                $( $crate::__model!(@init $kind out $idx); )*
                while let ::core::option::Option::Some(key) = r.next_key()? {
                    match &*key {
                        $( $json => $crate::__model!(@read $kind r out $field $idx $json), )*
                        _ => $crate::__private::read_extra(r, &mut out.extra, key)?,
                    }
                }
                ::core::result::Result::Ok(::core::option::Option::None)
            }

            fn add_drift(
                &self,
                pointer: &mut $crate::__private::Pointer,
                out: &mut ::std::vec::Vec<$crate::Drift>,
            ) {
                $( $crate::__model!(@drift $kind self $field $json pointer out); )*
                // A value kept for a field of the model drifted: how it
                // differs depends on the field's type.
                type Diff = fn(
                    &$crate::__private::Value,
                    &mut $crate::__private::Pointer,
                    &mut ::std::vec::Vec<$crate::Drift>,
                );
                for (k, v) in &self.extra {
                    let diff: ::core::option::Option<Diff> = match k.as_str() {
                        // A field given a value since writes that value,
                        // not the drifted one: nothing drifts there now.
                        $( $json if $crate::__model!(@writes $kind self $field $idx $ty) => {
                            ::core::option::Option::None
                        } )*
                        $( $json => $crate::__model!(@diff $kind $ty), )*
                        _ => ::core::option::Option::None,
                    };
                    if let ::core::option::Option::Some(diff) = diff {
                        pointer.with(k, |p| diff(v, p, out));
                    }
                }
            }
        }
    };

    (@type req $ty:ty) => { $ty };
    (@type any $ty:ty) => { $ty };
    (@type $kind:ident $ty:ty) => { ::core::option::Option<$ty> };

    (@present req $self:ident $field:ident $idx:literal) => { !$self.__marks.get($idx) };
    (@present $kind:ident $self:ident $field:ident $idx:literal) => {
        $self.$field.is_some() || $self.__marks.get($idx)
    };

    (@init req $out:ident $idx:literal) => { $out.__marks.set($idx) };
    (@init $kind:ident $out:ident $idx:literal) => {};

    (@read opt $r:ident $out:ident $field:ident $idx:literal $json:literal) => {
        $crate::__private::read_field($r, &mut $out.$field, &mut $out.extra, $json)?
    };
    (@read null $r:ident $out:ident $field:ident $idx:literal $json:literal) => {
        $crate::__private::read_nullable(
            $r, &mut $out.$field, &mut $out.extra, &mut $out.__marks, $idx, $json,
        )?
    };
    (@read any $r:ident $out:ident $field:ident $idx:literal $json:literal) => {
        $crate::__private::read_any($r, &mut $out.$field)?
    };
    (@read req $r:ident $out:ident $field:ident $idx:literal $json:literal) => {
        $crate::__private::read_required(
            $r, &mut $out.$field, &mut $out.extra, &mut $out.__marks, $idx, $json,
        )?
    };

    // A required struct the payload did not have (or had as another type)
    // is written only once it was given a value since.
    (@write req $m:ident $self:ident $field:ident $idx:literal $json:literal $ty:ty) => {
        if $crate::__model!(@writes req $self $field $idx $ty) {
            $m.serialize_entry($json, &$self.$field)?;
        }
    };
    (@write $kind:ident $m:ident $self:ident $field:ident $idx:literal $json:literal $ty:ty) => {
        $crate::__private::write_field(&mut $m, $json, &$self.$field, $self.__marks.get($idx))?
    };

    // Whether `@write` writes the field (so that `extra` does not write its
    // key again).
    (@writes req $self:ident $field:ident $idx:literal $ty:ty) => {
        !$self.__marks.get($idx) || $crate::__private::differs_from_default(&$self.$field)
    };
    (@writes $kind:ident $self:ident $field:ident $idx:literal $ty:ty) => {
        $self.$field.is_some() || $self.__marks.get($idx)
    };

    (@drift req $self:ident $field:ident $json:literal $p:ident $out:ident) => {
        $p.with($json, |p| $crate::__private::Model::add_drift(&$self.$field, p, $out))
    };
    (@drift any $self:ident $field:ident $json:literal $p:ident $out:ident) => {};
    (@drift $kind:ident $self:ident $field:ident $json:literal $p:ident $out:ident) => {
        $crate::__private::field_drift(&$self.$field, $json, $p, $out)
    };

    (@diff null $ty:ty) => {
        ::core::option::Option::Some($crate::__private::diff_raw_nullable::<$ty>)
    };
    (@diff any $ty:ty) => { ::core::option::Option::None };
    (@diff $kind:ident $ty:ty) => {
        ::core::option::Option::Some(<$ty as $crate::__private::Model>::diff_raw)
    };
}
