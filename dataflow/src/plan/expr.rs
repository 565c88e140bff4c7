//! The scalar expression language of plans: columns, literals, arithmetic, comparisons,
//! boolean logic, math functions and ADQL geometry. Types are inferred against a schema.

use std::fmt;

use arrow_schema::{DataType, Schema};
use serde::{Deserialize, Serialize};

use crate::error::PlanError;

/// A constant.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum Literal {
    /// SQL NULL.
    Null,
    /// A boolean.
    Bool(bool),
    /// An integer.
    Int(i64),
    /// A floating-point number.
    Float(f64),
    /// A string.
    Str(String),
}

impl Literal {
    /// The value as `f64`, when numeric.
    pub fn as_f64(&self) -> Option<f64> {
        match self {
            Literal::Int(i) => Some(*i as f64),
            Literal::Float(f) => Some(*f),
            _ => None,
        }
    }

    /// Arrow type of the literal.
    pub fn data_type(&self) -> DataType {
        match self {
            Literal::Null => DataType::Null,
            Literal::Bool(_) => DataType::Boolean,
            Literal::Int(_) => DataType::Int64,
            Literal::Float(_) => DataType::Float64,
            Literal::Str(_) => DataType::Utf8,
        }
    }
}

/// Binary operators.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum BinaryOp {
    /// `+`
    Add,
    /// `-`
    Sub,
    /// `*`
    Mul,
    /// `/` (always floating point, as in DuckDB)
    Div,
    /// `%`
    Mod,
    /// `=`
    Eq,
    /// `<>`
    NotEq,
    /// `<`
    Lt,
    /// `<=`
    LtEq,
    /// `>`
    Gt,
    /// `>=`
    GtEq,
    /// `AND`
    And,
    /// `OR`
    Or,
}

impl BinaryOp {
    /// True for `= <> < <= > >=`.
    pub fn is_comparison(self) -> bool {
        matches!(self, Self::Eq | Self::NotEq | Self::Lt | Self::LtEq | Self::Gt | Self::GtEq)
    }

    /// The operator with its operands swapped (`a < b` ⇔ `b > a`).
    pub fn flipped(self) -> Self {
        match self {
            Self::Lt => Self::Gt,
            Self::LtEq => Self::GtEq,
            Self::Gt => Self::Lt,
            Self::GtEq => Self::LtEq,
            other => other,
        }
    }

    fn symbol(self) -> &'static str {
        match self {
            Self::Add => "+",
            Self::Sub => "-",
            Self::Mul => "*",
            Self::Div => "/",
            Self::Mod => "%",
            Self::Eq => "=",
            Self::NotEq => "<>",
            Self::Lt => "<",
            Self::LtEq => "<=",
            Self::Gt => ">",
            Self::GtEq => ">=",
            Self::And => "AND",
            Self::Or => "OR",
        }
    }
}

/// Scalar functions.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Func {
    /// `ABS(x)`
    Abs,
    /// `SQRT(x)`
    Sqrt,
    /// `LOG10(x)`
    Log10,
    /// `POWER(x, y)`
    Power,
    /// `FLOOR(x)`
    Floor,
    /// `ROUND(x [, digits])`
    Round,
    /// `RADIANS(x)`
    Radians,
    /// `DEGREES(x)`
    Degrees,
    /// `SIN(x)`, argument in radians
    Sin,
    /// `COS(x)`, argument in radians
    Cos,
    /// `CONTAINS(POINT(ra, dec), CIRCLE(ra0, dec0, r))`: args ra, dec, ra0, dec0, r (degrees)
    InCircle,
    /// `CONTAINS(POINT(ra, dec), BOX(ra0, dec0, w, h))`: args ra, dec, ra0, dec0, w, h (degrees)
    InBox,
    /// `CONTAINS(POINT(ra, dec), POLYGON(ra1, dec1, ra2, dec2, ra3, dec3, …))`: args ra, dec,
    /// then the vertices (constants, degrees); edges are great-circle arcs
    InPolygon,
    /// `DISTANCE(POINT(ra1, dec1), POINT(ra2, dec2))` in degrees
    Distance,
    /// `HEALPIX(order, ra, dec)`: the nested-scheme HEALPix pixel of (ra, dec) at `order`
    /// (0–29, a constant), as HATS numbers pixels
    Healpix,
    /// `HEALPIX_29(ra, dec)`: the order-29 pixel, HATS' `_healpix_29` spatial index
    Healpix29,
    /// `HEALPIX_RA(order, pixel)`: RA of the pixel's centre, degrees
    HealpixRa,
    /// `HEALPIX_DEC(order, pixel)`: Dec of the pixel's centre, degrees
    HealpixDec,
}

impl Func {
    /// Looks a SQL function name up (case-insensitive).
    pub fn from_name(name: &str) -> Option<Self> {
        Some(match name.to_ascii_uppercase().as_str() {
            "ABS" => Self::Abs,
            "SQRT" => Self::Sqrt,
            "LOG10" => Self::Log10,
            "POWER" | "POW" => Self::Power,
            "FLOOR" => Self::Floor,
            "ROUND" => Self::Round,
            "RADIANS" => Self::Radians,
            "DEGREES" => Self::Degrees,
            "SIN" => Self::Sin,
            "COS" => Self::Cos,
            "HEALPIX" => Self::Healpix,
            "HEALPIX_29" => Self::Healpix29,
            "HEALPIX_RA" => Self::HealpixRa,
            "HEALPIX_DEC" => Self::HealpixDec,
            _ => return None,
        })
    }

    /// Names accepted by [`Func::from_name`] plus the geometry and aggregate functions.
    pub const NAMES: &'static [&'static str] = &[
        "ABS",
        "SQRT",
        "LOG10",
        "POWER",
        "FLOOR",
        "ROUND",
        "RADIANS",
        "DEGREES",
        "SIN",
        "COS",
        "HEALPIX",
        "HEALPIX_29",
        "HEALPIX_RA",
        "HEALPIX_DEC",
        "CONTAINS",
        "DISTANCE",
        "POINT",
        "CIRCLE",
        "BOX",
        "POLYGON",
        "COUNT",
        "SUM",
        "AVG",
        "MIN",
        "MAX",
        "STDDEV",
    ];

    /// Accepted argument counts.
    pub fn arity(self) -> &'static [usize] {
        match self {
            Self::Power => &[2],
            Self::Round => &[1, 2],
            Self::InCircle => &[5],
            Self::InBox => &[6],
            Self::InPolygon => &[8, 10, 12, 14, 16, 18, 20, 22, 24, 26, 28, 30, 32, 34, 36, 38, 40, 42],
            Self::Distance => &[4],
            Self::Healpix => &[3],
            Self::Healpix29 | Self::HealpixRa | Self::HealpixDec => &[2],
            _ => &[1],
        }
    }
}

/// Deepest HEALPix order (nside 2^29), the order of HATS' `_healpix_29`.
pub const HEALPIX_MAX_ORDER: u8 = 29;

/// The order argument of `HEALPIX(order, ra, dec)`: an integer constant in 0–29.
pub fn healpix_order(arg: &Expr) -> Result<u8, String> {
    match arg {
        Expr::Literal(Literal::Int(k)) if (0..=i64::from(HEALPIX_MAX_ORDER)).contains(k) => Ok(*k as u8),
        other => Err(format!("HEALPIX(order, ...) needs an integer order from 0 to {HEALPIX_MAX_ORDER}, got {other}")),
    }
}

/// A scalar expression over the columns of a batch.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum Expr {
    /// A column of the input, by name.
    Column(String),
    /// A constant.
    Literal(Literal),
    /// `left op right`
    Binary {
        /// Operator.
        op: BinaryOp,
        /// Left operand.
        left: Box<Expr>,
        /// Right operand.
        right: Box<Expr>,
    },
    /// `NOT e`
    Not(Box<Expr>),
    /// `-e`
    Negate(Box<Expr>),
    /// `e IS [NOT] NULL`
    IsNull {
        /// Operand.
        expr: Box<Expr>,
        /// `IS NOT NULL`.
        negated: bool,
    },
    /// `e [NOT] IN (literals)`
    InList {
        /// Operand.
        expr: Box<Expr>,
        /// The constants.
        list: Vec<Literal>,
        /// `NOT IN`.
        negated: bool,
    },
    /// A function call.
    Call {
        /// The function.
        func: Func,
        /// Its arguments.
        args: Vec<Expr>,
    },
}

impl Expr {
    /// A column reference.
    pub fn col(name: impl Into<String>) -> Self {
        Self::Column(name.into())
    }

    /// `left op right`.
    pub fn binary(op: BinaryOp, left: Expr, right: Expr) -> Self {
        Self::Binary { op, left: Box::new(left), right: Box::new(right) }
    }

    /// The columns this expression reads, in first-use order, without duplicates.
    pub fn columns(&self, out: &mut Vec<String>) {
        match self {
            Expr::Column(c) => {
                if !out.contains(c) {
                    out.push(c.clone());
                }
            }
            Expr::Literal(_) => {}
            Expr::Binary { left, right, .. } => {
                left.columns(out);
                right.columns(out);
            }
            Expr::Not(e) | Expr::Negate(e) => e.columns(out),
            Expr::IsNull { expr, .. } | Expr::InList { expr, .. } => expr.columns(out),
            Expr::Call { args, .. } => args.iter().for_each(|a| a.columns(out)),
        }
    }

    /// The same expression with every column renamed by `rename`.
    pub fn rename(&self, rename: &impl Fn(&str) -> String) -> Expr {
        match self {
            Expr::Column(c) => Expr::Column(rename(c)),
            Expr::Literal(_) => self.clone(),
            Expr::Binary { op, left, right } => Expr::binary(*op, left.rename(rename), right.rename(rename)),
            Expr::Not(e) => Expr::Not(Box::new(e.rename(rename))),
            Expr::Negate(e) => Expr::Negate(Box::new(e.rename(rename))),
            Expr::IsNull { expr, negated } => Expr::IsNull { expr: Box::new(expr.rename(rename)), negated: *negated },
            Expr::InList { expr, list, negated } => {
                Expr::InList { expr: Box::new(expr.rename(rename)), list: list.clone(), negated: *negated }
            }
            Expr::Call { func, args } => {
                Expr::Call { func: *func, args: args.iter().map(|a| a.rename(rename)).collect() }
            }
        }
    }

    /// Splits a conjunction into its conjuncts.
    pub fn conjuncts(&self) -> Vec<&Expr> {
        match self {
            Expr::Binary { op: BinaryOp::And, left, right } => {
                let mut v = left.conjuncts();
                v.extend(right.conjuncts());
                v
            }
            other => vec![other],
        }
    }

    /// Infers the Arrow type of the expression over `schema`.
    pub fn data_type(&self, schema: &Schema) -> Result<DataType, PlanError> {
        Ok(match self {
            Expr::Column(c) => schema
                .field_with_name(c)
                .map_err(|_| PlanError::Type(format!("column \"{c}\" missing from input")))?
                .data_type()
                .clone(),
            Expr::Literal(l) => l.data_type(),
            Expr::Binary { op, left, right } => {
                let (l, r) = (left.data_type(schema)?, right.data_type(schema)?);
                match op {
                    BinaryOp::And | BinaryOp::Or => {
                        expect_bool(&l, left)?;
                        expect_bool(&r, right)?;
                        DataType::Boolean
                    }
                    op if op.is_comparison() => {
                        comparable(&l, &r)
                            .map_err(|()| PlanError::Type(format!("cannot compare {l} with {r} in {self}")))?;
                        DataType::Boolean
                    }
                    BinaryOp::Div => {
                        expect_numeric(&l, left)?;
                        expect_numeric(&r, right)?;
                        DataType::Float64
                    }
                    _ => {
                        expect_numeric(&l, left)?;
                        expect_numeric(&r, right)?;
                        numeric_supertype(&l, &r)
                    }
                }
            }
            Expr::Not(e) => {
                expect_bool(&e.data_type(schema)?, e)?;
                DataType::Boolean
            }
            Expr::Negate(e) => {
                let t = e.data_type(schema)?;
                expect_numeric(&t, e)?;
                numeric_supertype(&t, &t)
            }
            Expr::IsNull { .. } => DataType::Boolean,
            Expr::InList { expr, list, .. } => {
                let t = expr.data_type(schema)?;
                for l in list {
                    comparable(&t, &l.data_type())
                        .map_err(|()| PlanError::Type(format!("IN list value {l:?} does not match {t} in {self}")))?;
                }
                DataType::Boolean
            }
            Expr::Call { func, args } => {
                for a in args {
                    expect_numeric(&a.data_type(schema)?, a)?;
                }
                match func {
                    Func::InCircle | Func::InBox | Func::InPolygon => DataType::Boolean,
                    Func::Abs if args[0].data_type(schema)?.is_integer() => DataType::Int64,
                    Func::Healpix => {
                        healpix_order(&args[0]).map_err(PlanError::Type)?;
                        DataType::Int64
                    }
                    Func::Healpix29 => DataType::Int64,
                    Func::HealpixRa | Func::HealpixDec => {
                        healpix_order(&args[0]).map_err(PlanError::Type)?;
                        DataType::Float64
                    }
                    _ => DataType::Float64,
                }
            }
        })
    }
}

/// True for the numeric types starflow computes with (NULL literals count as numeric).
pub fn is_numeric(t: &DataType) -> bool {
    t.is_numeric() || *t == DataType::Null
}

/// The type two numeric operands are computed in: Int64 for integers, Float32 when both
/// are Float32, else Float64.
pub fn numeric_supertype(l: &DataType, r: &DataType) -> DataType {
    let int = |t: &DataType| t.is_integer() || *t == DataType::Null;
    if int(l) && int(r) {
        DataType::Int64
    } else if *l == DataType::Float32 && (*r == DataType::Float32 || *r == DataType::Null) {
        DataType::Float32
    } else {
        DataType::Float64
    }
}

fn comparable(l: &DataType, r: &DataType) -> Result<(), ()> {
    let ok = (is_numeric(l) && is_numeric(r))
        || l == r
        || *l == DataType::Null
        || *r == DataType::Null
        || (matches!(l, DataType::Utf8 | DataType::LargeUtf8 | DataType::Utf8View)
            && matches!(r, DataType::Utf8 | DataType::LargeUtf8 | DataType::Utf8View));
    if ok { Ok(()) } else { Err(()) }
}

fn expect_numeric(t: &DataType, e: &Expr) -> Result<(), PlanError> {
    if is_numeric(t) { Ok(()) } else { Err(PlanError::Type(format!("{e} is {t}, a number is needed"))) }
}

fn expect_bool(t: &DataType, e: &Expr) -> Result<(), PlanError> {
    if matches!(t, DataType::Boolean | DataType::Null) {
        Ok(())
    } else {
        Err(PlanError::Type(format!("{e} is {t}, a boolean condition is needed")))
    }
}

impl fmt::Display for Literal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Literal::Null => write!(f, "NULL"),
            Literal::Bool(b) => write!(f, "{}", if *b { "TRUE" } else { "FALSE" }),
            Literal::Int(i) => write!(f, "{i}"),
            Literal::Float(x) => write!(f, "{x:?}"),
            Literal::Str(s) => write!(f, "'{}'", s.replace('\'', "''")),
        }
    }
}

impl fmt::Display for Expr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Expr::Column(c) => write!(f, "{c}"),
            Expr::Literal(l) => write!(f, "{l}"),
            Expr::Binary { op, left, right } => write!(f, "({left} {} {right})", op.symbol()),
            Expr::Not(e) => write!(f, "NOT {e}"),
            Expr::Negate(e) => write!(f, "-{e}"),
            Expr::IsNull { expr, negated } => {
                write!(f, "{expr} IS {}NULL", if *negated { "NOT " } else { "" })
            }
            Expr::InList { expr, list, negated } => {
                let items: Vec<String> = list.iter().map(ToString::to_string).collect();
                write!(f, "{expr} {}IN ({})", if *negated { "NOT " } else { "" }, items.join(", "))
            }
            Expr::Call { func, args } => {
                let a: Vec<String> = args.iter().map(ToString::to_string).collect();
                match func {
                    Func::InCircle => {
                        write!(f, "CONTAINS(POINT({}, {}), CIRCLE({}, {}, {}))", a[0], a[1], a[2], a[3], a[4])
                    }
                    Func::InBox => {
                        write!(f, "CONTAINS(POINT({}, {}), BOX({}, {}, {}, {}))", a[0], a[1], a[2], a[3], a[4], a[5])
                    }
                    Func::InPolygon => {
                        let v: Vec<String> = a[2..].iter().map(ToString::to_string).collect();
                        write!(f, "CONTAINS(POINT({}, {}), POLYGON({}))", a[0], a[1], v.join(", "))
                    }
                    Func::Distance => {
                        write!(f, "DISTANCE(POINT({}, {}), POINT({}, {}))", a[0], a[1], a[2], a[3])
                    }
                    Func::Healpix29 => write!(f, "HEALPIX_29({})", a.join(", ")),
                    Func::HealpixRa => write!(f, "HEALPIX_RA({})", a.join(", ")),
                    Func::HealpixDec => write!(f, "HEALPIX_DEC({})", a.join(", ")),
                    other => write!(f, "{}({})", format!("{other:?}").to_uppercase(), a.join(", ")),
                }
            }
        }
    }
}
