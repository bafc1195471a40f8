//! Zeek's connection history string: one letter per event kind and direction (upper case for
//! the originator), in the order the events first happened.

use thin_vec::ThinVec;

/// The letters of one connection, plus the repeat counters Zeek keeps for some of them.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct History {
    letters: Letters,
    /// Bit per (letter, direction) already recorded, for the once-only letters.
    seen: u16,
    /// Occurrences of the counted letters (G T W), per direction: [orig, resp].
    counts: [[u32; 3]; 2],
}

/// History letters, inline up to 14 (nearly every connection: the generated benchmark
/// captures have none over 10) so that most connections allocate nothing, in 16 bytes.
#[derive(Clone, Debug, PartialEq, Eq)]
enum Letters {
    Inline { len: u8, bytes: [u8; INLINE] },
    Heap(ThinVec<u8>),
}

const INLINE: usize = 14;

impl Default for Letters {
    fn default() -> Self {
        Letters::Inline { len: 0, bytes: [0; INLINE] }
    }
}

impl Letters {
    fn as_str(&self) -> &str {
        let bytes = match self {
            Letters::Inline { len, bytes } => &bytes[..*len as usize],
            Letters::Heap(v) => v,
        };
        std::str::from_utf8(bytes).expect("history letters are ASCII")
    }

    fn push(&mut self, letter: u8) {
        match self {
            Letters::Inline { len, bytes } if (*len as usize) < INLINE => {
                bytes[*len as usize] = letter;
                *len += 1;
            }
            Letters::Inline { len, bytes } => {
                let mut v = ThinVec::from(&bytes[..*len as usize]);
                v.push(letter);
                *self = Letters::Heap(v);
            }
            Letters::Heap(v) => v.push(letter),
        }
    }
}

/// The "seen" bit of a letter recorded at most once per direction.
fn once_index(letter: char) -> usize {
    match letter {
        'S' => 0,
        'H' => 1,
        'A' => 2,
        'D' => 3,
        'F' => 4,
        'R' => 5,
        'I' => 6,
        'Q' => 7,
        other => panic!("'{other}' is not a once-only history letter"),
    }
}
/// Letters recorded on the 1st, 10th, 100th ... occurrence (Zeek's logarithmic repeats).
/// Zeek's fourth, C (bad checksum), never comes: checksums are not verified (as `zeek -C`).
const COUNTED: [char; 3] = ['G', 'T', 'W'];

impl History {
    /// Records an event the first time it happens in a direction; `letter` is upper case.
    /// Returns whether it was new.
    pub fn once(&mut self, letter: char, is_orig: bool) -> bool {
        self.once_slot(letter, letter, is_orig)
    }

    /// Like [`Self::once`], with the "seen" slot of another letter (Zeek's S and H share one).
    pub fn once_slot(&mut self, slot: char, letter: char, is_orig: bool) -> bool {
        let idx = once_index(slot);
        let bit = 1u16 << (idx * 2 + usize::from(!is_orig));
        if self.seen & bit != 0 {
            return false;
        }
        self.seen |= bit;
        self.push(letter, is_orig);
        true
    }

    /// Records a letter every time it is called (Zeek repeats S/H/F/R when the sequence differs).
    pub fn always(&mut self, letter: char, is_orig: bool) {
        self.push(letter, is_orig);
    }

    /// Counts an event of a counted letter, writing it at 1, 10, 100 ... occurrences.
    pub fn counted(&mut self, letter: char, is_orig: bool) {
        let i = COUNTED.iter().position(|&c| c == letter).expect("a counted history letter");
        let d = usize::from(!is_orig);
        let n = self.counts[d][i].saturating_add(1);
        self.counts[d][i] = n;
        if is_power_of_ten(n) {
            self.push(letter, is_orig);
        }
    }

    /// Marks that originator and responder were swapped (Zeek's `^`), where the history has got
    /// to: in front for a connection turned round as it starts, later for one turned round by
    /// what it carried. The letters already written keep their case, and the "seen" bits stay
    /// with the role, not the host, as in Zeek's `Connection::FlipRoles`.
    pub fn flip(&mut self) {
        self.letters.push(b'^');
    }

    /// Whether the history is this one letter and nothing else (cheap: no string made).
    pub fn is_only(&self, letter: u8) -> bool {
        matches!(&self.letters, Letters::Inline { len: 1, bytes } if bytes[0] == letter)
    }

    /// Turns the history `H` (a connection opened by a SYN+ACK) into `^h`: the SYN+ACK's sender
    /// turned out to be the responder. The "seen" bits stay as they were, as in Zeek.
    pub fn replace_with_flipped_synack(&mut self) {
        debug_assert!(self.is_only(b'H'));
        self.letters = Letters::default();
        self.letters.push(b'^');
        self.letters.push(b'h');
    }

    /// The letters, e.g. `ShADadFf`.
    pub fn as_str(&self) -> &str {
        self.letters.as_str()
    }

    fn push(&mut self, letter: char, is_orig: bool) {
        self.letters.push(if is_orig { letter } else { letter.to_ascii_lowercase() } as u8);
    }
}

fn is_power_of_ten(mut n: u32) -> bool {
    while n >= 10 && n.is_multiple_of(10) {
        n /= 10;
    }
    n == 1
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn once_letters_per_direction() {
        let mut h = History::default();
        h.once('A', true);
        h.once('A', true);
        h.once('A', false);
        h.once('D', true);
        assert_eq!(h.as_str(), "AaD");
    }

    #[test]
    fn counted_letters_repeat_logarithmically() {
        let mut h = History::default();
        for _ in 0..150 {
            h.counted('T', true);
        }
        h.counted('T', false);
        assert_eq!(h.as_str(), "TTTt");
    }

    #[test]
    fn powers_of_ten() {
        let hits: Vec<u32> = (1..=100_000).filter(|&n| is_power_of_ten(n)).collect();
        assert_eq!(hits, [1, 10, 100, 1000, 10_000, 100_000]);
    }

    #[test]
    fn long_histories_move_to_the_heap() {
        let mut h = History::default();
        for i in 0..30 {
            h.always(if i % 2 == 0 { 'S' } else { 'H' }, i % 3 == 0);
        }
        assert_eq!(h.as_str().len(), 30);
        h.flip();
        assert!(h.as_str().ends_with('^'));
        assert_eq!(h.as_str().len(), 31);
    }

    #[test]
    fn flip_marks_where_the_history_has_got_to() {
        let mut h = History::default();
        h.flip();
        h.once('D', true);
        assert_eq!(h.as_str(), "^D");
        h.flip();
        h.once('D', true);
        h.once('D', false);
        assert_eq!(h.as_str(), "^D^d", "D was seen from the originator's role already");
    }

    #[test]
    fn a_synack_first_is_rewritten() {
        let mut h = History::default();
        h.once_slot('S', 'H', true);
        assert!(h.is_only(b'H'));
        h.replace_with_flipped_synack();
        h.once('A', true);
        assert_eq!(h.as_str(), "^hA");
        assert!(!h.is_only(b'H'));
    }
}
