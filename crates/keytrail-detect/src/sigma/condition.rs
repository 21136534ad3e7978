//! The Sigma condition language: `and`, `or`, `not`, parentheses, `1 of sel*`,
//! `all of them`, `N of x*`. Precedence: `not` > `and` > `or`.

/// A compiled condition over selection indices.
#[derive(Debug, Clone, PartialEq)]
pub enum Cond {
    /// A selection by index.
    Sel(usize),
    /// Negation.
    Not(Box<Cond>),
    /// Conjunction.
    And(Vec<Cond>),
    /// Disjunction.
    Or(Vec<Cond>),
    /// At least `n` of the selections match (`usize::MAX` = all of them).
    Of(usize, Vec<usize>),
}

impl Cond {
    /// Evaluates with a selection oracle.
    pub fn eval(&self, sel: &mut impl FnMut(usize) -> bool) -> bool {
        match self {
            Cond::Sel(i) => sel(*i),
            Cond::Not(c) => !c.eval(sel),
            Cond::And(cs) => cs.iter().all(|c| c.eval(sel)),
            Cond::Or(cs) => cs.iter().any(|c| c.eval(sel)),
            Cond::Of(n, ids) => {
                if *n == usize::MAX {
                    ids.iter().all(|&i| sel(i))
                } else {
                    let mut k = 0;
                    for &i in ids {
                        if sel(i) {
                            k += 1;
                            if k >= *n {
                                return true;
                            }
                        }
                    }
                    false
                }
            }
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
enum T {
    And,
    Or,
    Not,
    Open,
    Close,
    Word(String),
}

fn lex(s: &str) -> Vec<T> {
    let mut out = Vec::new();
    let mut cur = String::new();
    let flush = |cur: &mut String, out: &mut Vec<T>| {
        if !cur.is_empty() {
            let w = std::mem::take(cur);
            out.push(match w.to_ascii_lowercase().as_str() {
                "and" => T::And,
                "or" => T::Or,
                "not" => T::Not,
                _ => T::Word(w),
            });
        }
    };
    for c in s.chars() {
        match c {
            '(' | ')' => {
                flush(&mut cur, &mut out);
                out.push(if c == '(' { T::Open } else { T::Close });
            }
            c if c.is_whitespace() => flush(&mut cur, &mut out),
            c => cur.push(c),
        }
    }
    flush(&mut cur, &mut out);
    out
}

fn glob_match(pat: &str, name: &str) -> bool {
    match pat.split_once('*') {
        None => pat == name,
        Some((pre, post)) => {
            name.len() >= pre.len() + post.len()
                && name.starts_with(pre)
                && glob_match_rest(post, &name[pre.len()..])
        }
    }
}

fn glob_match_rest(pat: &str, name: &str) -> bool {
    if !pat.contains('*') {
        return name.ends_with(pat);
    }
    (0..=name.len()).any(|i| name.is_char_boundary(i) && glob_match(pat, &name[i..]))
}

struct P<'a> {
    toks: Vec<T>,
    pos: usize,
    names: &'a [String],
}

impl P<'_> {
    fn peek(&self) -> Option<&T> {
        self.toks.get(self.pos)
    }
    fn or(&mut self) -> Result<Cond, String> {
        let mut items = vec![self.and()?];
        while self.peek() == Some(&T::Or) {
            self.pos += 1;
            items.push(self.and()?);
        }
        Ok(if items.len() == 1 {
            items.pop().expect("one")
        } else {
            Cond::Or(items)
        })
    }
    fn and(&mut self) -> Result<Cond, String> {
        let mut items = vec![self.not()?];
        while self.peek() == Some(&T::And) {
            self.pos += 1;
            items.push(self.not()?);
        }
        Ok(if items.len() == 1 {
            items.pop().expect("one")
        } else {
            Cond::And(items)
        })
    }
    fn not(&mut self) -> Result<Cond, String> {
        if self.peek() == Some(&T::Not) {
            self.pos += 1;
            return Ok(Cond::Not(Box::new(self.not()?)));
        }
        self.atom()
    }
    fn atom(&mut self) -> Result<Cond, String> {
        let t = self
            .toks
            .get(self.pos)
            .cloned()
            .ok_or("condition ends unexpectedly")?;
        self.pos += 1;
        match t {
            T::Open => {
                let c = self.or()?;
                if self.peek() != Some(&T::Close) {
                    return Err("missing `)` in condition".into());
                }
                self.pos += 1;
                Ok(c)
            }
            T::Word(w) => {
                let quant = if w == "all" {
                    Some(usize::MAX)
                } else if w == "any" {
                    Some(1)
                } else {
                    w.parse::<usize>().ok()
                };
                if let (Some(n), Some(T::Word(of))) = (quant, self.toks.get(self.pos))
                    && of == "of"
                {
                    self.pos += 1;
                    let Some(T::Word(target)) = self.toks.get(self.pos).cloned() else {
                        return Err(format!("`{w} of` needs a target"));
                    };
                    self.pos += 1;
                    let ids: Vec<usize> = if target == "them" {
                        (0..self.names.len())
                            .filter(|&i| !self.names[i].starts_with('_'))
                            .collect()
                    } else {
                        (0..self.names.len())
                            .filter(|&i| glob_match(&target, &self.names[i]))
                            .collect()
                    };
                    if ids.is_empty() {
                        return Err(format!("`{w} of {target}` matches no selection"));
                    }
                    return Ok(Cond::Of(n, ids));
                }
                match self.names.iter().position(|n| *n == w) {
                    Some(i) => Ok(Cond::Sel(i)),
                    None => Err(format!("condition names unknown selection `{w}`")),
                }
            }
            other => Err(format!("unexpected `{other:?}` in condition")),
        }
    }
}

/// Parses a condition string against the rule's selection names.
pub fn parse(s: &str, names: &[String]) -> Result<Cond, String> {
    if s.contains('|') {
        return Err(
            "aggregation expressions (`| count()`) are deprecated; use a correlation rule".into(),
        );
    }
    let mut p = P {
        toks: lex(s),
        pos: 0,
        names,
    };
    let c = p.or()?;
    if p.pos != p.toks.len() {
        return Err(format!("unexpected trailing tokens in condition `{s}`"));
    }
    Ok(c)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn names(v: &[&str]) -> Vec<String> {
        v.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn precedence_and_quantifiers() {
        let n = names(&["selection", "filter_a", "filter_b", "sel2"]);
        let c = parse("selection and not 1 of filter_* or sel2", &n).unwrap();
        assert_eq!(
            c,
            Cond::Or(vec![
                Cond::And(vec![
                    Cond::Sel(0),
                    Cond::Not(Box::new(Cond::Of(1, vec![1, 2])))
                ]),
                Cond::Sel(3)
            ])
        );
        let c = parse("all of them", &n).unwrap();
        assert_eq!(c, Cond::Of(usize::MAX, vec![0, 1, 2, 3]));
        let c = parse("not (selection or sel2)", &n).unwrap();
        let mut oracle = |i: usize| i == 3;
        assert!(!c.eval(&mut oracle));
        assert!(parse("selection and", &n).is_err());
        assert!(parse("nosuch", &n).is_err());
        assert!(parse("(selection", &n).is_err());
        assert!(parse("selection | count() > 5", &n).is_err());
    }
}
